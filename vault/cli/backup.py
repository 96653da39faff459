"""Backup commands: ``vault backup run|list|verify|restore|prune`` (the library is vault.backup)."""

from __future__ import annotations

import datetime as _dt
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import click

from vault import backup
from vault.cli import Ctx, bars, cli, emit, json_opt, local_time, problems_summary, report_lines
from vault.errors import InputError, UsageError
from vault.i18n import N_, _
from vault.i18n import render as tr
from vault.backup.retention import ONLY_COPY

_DURATION = re.compile(r"(\d+)([dhm]?)\Z")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%?\Z")


def _with_endpoint(url: str, endpoint: str | None) -> str:
    """``--endpoint-url`` goes into an s3 URL, so backups.toml records where a destruction must reach.

    A plain path (no ``scheme://``) names a directory: ``/mnt/offsite`` means ``file:///mnt/offsite``.
    """
    if "://" not in url:
        if not url.strip():
            raise UsageError(N_("the backup target is empty"), hint=N_("give a directory, file:///dir or s3://bucket/prefix"))
        url = Path(url).expanduser().resolve().as_uri()
    if not endpoint:
        return url
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise UsageError(N_("--endpoint-url is for s3:// targets only"))
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    query["endpoint"] = endpoint
    return parts._replace(query=urlencode(query)).geturl()


def _duration(text: str) -> _dt.timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise UsageError(N_("bad duration {text!r}"), hint=N_("write a number of days, hours or minutes: 7d, 36h, 90m"), text=text)
    n, unit = int(m[1]), m[2] or "d"
    return _dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: n})


def _identities(obj: Ctx) -> list:
    """The member's own age identity; the snapshot's ring files lead from it to the rings (no vault needed)."""
    return [obj.member_key(N_("this needs a ring member's identity")).age_identity()]


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


target_arg = click.argument("target", metavar="TARGET")
endpoint_opt = click.option("--endpoint-url", envvar="VAULT_S3_ENDPOINT",
                            help="S3 endpoint (MinIO, Ceph, ...); default AWS_ENDPOINT_URL or AWS itself.")


@cli.group("backup")
def backup_grp() -> None:
    """Offsite backups to file:// or s3:// targets (exit 0 ok, 1 error or damage found, 2 usage, 3 saved without what is no regular file)."""


@backup_grp.command("run")
@target_arg
@endpoint_opt
@click.option("--key-window", default="7d", show_default=True,
              help="How long superseded key-table generations stay in the key mirror (7d, 36h).")
@click.option("--restored-from", metavar="SNAPSHOT",
              help="This vault was restored on purpose from SNAPSHOT of TARGET, which is older than what "
                   "TARGET recorded: accept its history (the rollback is recorded on TARGET).")
@json_opt
@click.pass_obj
def backup_run(obj: Ctx, target: str, endpoint_url: str | None, key_window: str, restored_from: str | None,
               as_json: bool) -> None:
    """Snapshot the vault to TARGET; needs no identity (only ciphertext and signed records leave)."""
    url = _with_endpoint(target, endpoint_url)
    # With an identity a new target is registered in the history (backups.toml bound, FORMAT §16.5);
    # it is unlocked only if the run must write backups.toml.
    actor = obj.actor if obj.identity_file else None
    with bars(_("uploading")) as bar:
        rep = backup.run(obj.vault, url, key_window=_duration(key_window), actor=actor, restored_from=restored_from,
                         progress=bar)
    emit(rep.as_dict(), as_json, lambda r: (
        _("snapshot {id} saved: {files} files, {size} ({new} new) in {seconds:.1f}s; {keys} key tables mirrored")
        .format(id=r["snapshot"][:8], files=r["files"], size=_size(r["bytes_total"]), new=_size(r["bytes_new"]),
                seconds=r["duration"], keys=r["keys_mirrored"])
        + _("; history entry {count} recorded").format(count=r["history"]["count"])
        + "".join("\n" + _("problem: keys/{table} is missing from the vault; its last mirrored generation is kept "
                            "(run 'vault check')").format(table=k) for k in r["keys_missing"])
        + "".join("\n" + _("problem: {path} is not a regular file (a symbolic link, FIFO or device); not backed up "
                            "(run 'vault check')").format(path=p) for p in r["not_regular"])))
    if rep.not_regular:
        sys.exit(3)  # the snapshot is saved without them (FORMAT §16.7)


@backup_grp.command("list")
@target_arg
@endpoint_opt
@json_opt
def backup_list(target: str, endpoint_url: str | None, as_json: bool) -> None:
    """List the snapshots on TARGET (no key needed)."""
    rows = backup.list_snapshots(_with_endpoint(target, endpoint_url))
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['id'][:8]}  {local_time(r['time'])}  " + _("{files:>7} files  {size:>10}  {new:>10} new").format(
            files=r["files"], size=_size(r["bytes"]), new=_size(r["bytes_new"])) for r in rs) or _("(no snapshots)"))


@backup_grp.command("verify")
@target_arg
@endpoint_opt
@click.option("--read-data", is_flag=True, help="Download and hash everything; with your identity, also decrypt.")
@click.option("--read-data-subset", metavar="N%", help="Do that for a random N percent of the packs.")
@json_opt
@click.pass_obj
def backup_verify(obj: Ctx, target: str, endpoint_url: str | None, read_data: bool, read_data_subset: str | None,
                  as_json: bool) -> None:
    """Check that every object the snapshots need is on TARGET; name what is missing or damaged."""
    if read_data and read_data_subset:
        raise UsageError(N_("pass --read-data or --read-data-subset, not both"))
    fraction = 1.0 if read_data else 0.0
    if read_data_subset:
        m = _PERCENT.match(read_data_subset.strip())
        if not m or not 0 < float(m[1]) <= 100:
            raise UsageError(N_("bad subset {read_data_subset!r}"), hint=N_("write a percentage such as 10%"), read_data_subset=read_data_subset)
        fraction = float(m[1]) / 100
    # Hashing needs no key: without an identity --read-data hashes every byte and decrypts nothing.
    ids = None
    if fraction:
        try:
            ids = _identities(obj)
        except InputError:
            ids = None
    with bars(_("reading")) as bar:
        rep = backup.verify(_with_endpoint(target, endpoint_url), read_fraction=fraction, identities=ids, progress=bar)

    def text(d: dict) -> str:
        lines = report_lines(d["problems"], d["notes"])
        if d["history"]:
            h = d["history"]
            lines.append(_("history: entry {count} ({head}…) recorded {time}").format(
                count=h["count"], head=h["head"][:16], time=h["time"]))
        lines.append(_("{snapshots} snapshots, {packs} packs ({read} read, {decrypted} documents decrypted); {summary}")
                     .format(snapshots=d["snapshots"], packs=d["packs"], read=d["packs_read"],
                             decrypted=d["documents_decrypted"], summary=problems_summary(d["problems"])))
        return "\n".join(lines)

    emit(rep.as_dict(), as_json, text)
    if not rep.ok:
        sys.exit(1)


@backup_grp.command("restore")
@target_arg
@click.argument("snapshot")
@click.argument("dest_dir", type=click.Path(file_okay=False))
@endpoint_opt
@json_opt
@click.pass_obj
def backup_restore(obj: Ctx, target: str, snapshot: str, dest_dir: str, endpoint_url: str | None, as_json: bool) -> None:
    """Rebuild SNAPSHOT (id prefix or 'latest') into the new directory DEST_DIR; needs your identity."""
    member = obj.member_key(_("this needs a ring member's identity"))
    with bars(_("restoring")) as bar:
        rep = backup.restore(_with_endpoint(target, endpoint_url), snapshot, Path(dest_dir), [member.age_identity()],
                             member=member, progress=bar)
    emit(rep.as_dict(), as_json, lambda r: "\n".join(
        [_("restored snapshot {id} to {dest}: {files} files, {size}, {keys} key tables").format(
            id=r["snapshot"][:8], dest=r["dest"], files=r["files"], size=_size(r["bytes"]), keys=r["key_tables"])]
        + ([_("history: entry {count} ({head}…)").format(count=r["history"]["count"], head=r["history"]["head"][:16])]
           if r["history"] else [])
        + [_("note: {table}: destroyed or shredded since the snapshot").format(table=k) for k in r["key_tables_missing"]]
        + [_("note: {table}: no mirrored generation opens with this snapshot's rings").format(table=k)
           for k in r["key_tables_unreadable"]]
        + ([_("note: {count} key files bound to the restored history (newer than the snapshot, or key releases, "
              "which are never backed up)").format(count=len(r["rebound"]))] if r["rebound"] else [])
        + [_("next: vault --vault {dest} check --read-data (and compare the fingerprint)").format(dest=r["dest"])]))


@backup_grp.command("prune")
@target_arg
@endpoint_opt
@click.option("--keep-daily", type=click.IntRange(0), default=0, help="Keep the newest snapshot of each of the last N days.")
@click.option("--keep-weekly", type=click.IntRange(0), default=0, help="... of the last N ISO weeks.")
@click.option("--keep-monthly", type=click.IntRange(0), default=0, help="... of the last N months.")
@click.option("--keep-yearly", type=click.IntRange(0), default=0, help="... of the last N years.")
@click.option("--dry-run", is_flag=True, help="Say what would go; delete nothing.")
@json_opt
@click.pass_obj
def backup_prune(obj: Ctx, target: str, endpoint_url: str | None, keep_daily: int, keep_weekly: int,
                 keep_monthly: int, keep_yearly: int, dry_run: bool, as_json: bool) -> None:
    """Forget snapshots by the keep rules and delete unreferenced packs; holds and retention are honoured."""
    rep = backup.prune(_with_endpoint(target, endpoint_url), keep_daily=keep_daily, keep_weekly=keep_weekly,
                       keep_monthly=keep_monthly, keep_yearly=keep_yearly,
                       protected=backup.protected_dossiers(obj.vault),
                       retained=backup.retained_records(obj.vault), dry_run=dry_run)
    emit(rep.as_dict(), as_json, lambda r: (
        (_("would keep {kept} snapshots, would forget {forgotten}; {packs} packs ({size}) to delete") if r["dry_run"]
         else _("kept {kept} snapshots, forgot {forgotten}; {packs} packs ({size}) deleted")).format(
            kept=len(r["kept"]), forgotten=len(r["forgotten"]), packs=r["packs_deleted"], size=_size(r["bytes_freed"]))
        + "".join("\n" + _("kept {id}: {why}").format(id=sid[:8], why=tr(why)) for sid, whys in r["kept"].items()
                  for why in whys if getattr(why, "msgid", None) in ONLY_COPY)))
