"""Backup commands: ``vault backup run|list|verify|restore|prune`` (the library is vault.backup)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import click

from vault import backup
from vault.cli import Ctx, cli, emit, json_opt, progress
from vault.errors import UsageError

_DURATION = re.compile(r"(\d+)([dhm]?)\Z")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%?\Z")


def _with_endpoint(url: str, endpoint: str | None) -> str:
    """``--endpoint-url`` goes into an s3 URL, so backups.toml records where a destruction must reach.

    A plain path (no ``scheme://``) names a directory: ``/mnt/offsite`` means ``file:///mnt/offsite``.
    """
    if "://" not in url:
        if not url.strip():
            raise UsageError("the backup target is empty", hint="give a directory, file:///dir or s3://bucket/prefix")
        url = Path(url).expanduser().resolve().as_uri()
    if not endpoint:
        return url
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise UsageError("--endpoint-url is for s3:// targets only")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    query["endpoint"] = endpoint
    return parts._replace(query=urlencode(query)).geturl()


def _duration(text: str) -> _dt.timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise UsageError(f"bad duration {text!r}", hint="write a number of days, hours or minutes: 7d, 36h, 90m")
    n, unit = int(m[1]), m[2] or "d"
    return _dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: n})


def _identities(obj: Ctx) -> list:
    """The member's own age identity; the snapshot's ring files lead from it to the rings (no vault needed)."""
    return [obj.member_key("this needs a ring member's identity").age_identity()]


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
    """Offsite backups to file:// or s3:// targets (exit 0 ok, 1 error or damage found, 2 usage)."""


@backup_grp.command("run")
@target_arg
@endpoint_opt
@click.option("--key-window", default="7d", show_default=True,
              help="How long superseded key-table generations stay in the key mirror (7d, 36h).")
@json_opt
@click.pass_obj
def backup_run(obj: Ctx, target: str, endpoint_url: str | None, key_window: str, as_json: bool) -> None:
    """Snapshot the vault to TARGET; needs no identity (only ciphertext and signed records leave)."""
    url = _with_endpoint(target, endpoint_url)
    with contextlib.ExitStack() as stack:
        rep = backup.run(obj.vault, url, key_window=_duration(key_window),
                         progress=lambda total: stack.enter_context(progress(total, "uploading")))
    emit(rep.as_dict(), as_json, lambda r: (
        f"snapshot {r['snapshot'][:8]} saved: {r['files']} files, {_size(r['bytes_total'])} "
        f"({_size(r['bytes_new'])} new) in {r['duration']:.1f}s; {r['keys_mirrored']} key tables mirrored"
        + "".join(f"\nproblem: keys/{k} is missing from the vault; its last mirrored generation is kept "
                  "(run 'vault check')" for k in r["keys_missing"])))


@backup_grp.command("list")
@target_arg
@endpoint_opt
@json_opt
def backup_list(target: str, endpoint_url: str | None, as_json: bool) -> None:
    """List the snapshots on TARGET (no key needed)."""
    rows = backup.list_snapshots(_with_endpoint(target, endpoint_url))
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['id'][:8]}  {r['time']}  {r['files']:>7} files  {_size(r['bytes']):>10}  {_size(r['bytes_new']):>10} new"
        for r in rs) or "(no snapshots)")


@backup_grp.command("verify")
@target_arg
@endpoint_opt
@click.option("--read-data", is_flag=True, help="Download, hash and decrypt everything (needs your identity).")
@click.option("--read-data-subset", metavar="N%", help="Do that for a random N% of the packs.")
@json_opt
@click.pass_obj
def backup_verify(obj: Ctx, target: str, endpoint_url: str | None, read_data: bool, read_data_subset: str | None,
                  as_json: bool) -> None:
    """Check that every object the snapshots need is on TARGET; name what is missing or damaged."""
    if read_data and read_data_subset:
        raise UsageError("pass --read-data or --read-data-subset, not both")
    fraction = 1.0 if read_data else 0.0
    if read_data_subset:
        m = _PERCENT.match(read_data_subset.strip())
        if not m or not 0 < float(m[1]) <= 100:
            raise UsageError(f"bad subset {read_data_subset!r}", hint="write a percentage such as 10%")
        fraction = float(m[1]) / 100
    ids = _identities(obj) if fraction else None
    rep = backup.verify(_with_endpoint(target, endpoint_url), read_fraction=fraction, identities=ids)

    def text(d: dict) -> str:
        lines = [f"problem: {p}" for p in d["problems"]] + [f"note: {n}" for n in d["notes"]]
        lines.append(f"{d['snapshots']} snapshots, {d['packs']} packs ({d['packs_read']} read, "
                     f"{d['documents_decrypted']} documents decrypted); "
                     f"{'no problems' if d['ok'] else str(len(d['problems'])) + ' problem(s)'}")
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
    rep = backup.restore(_with_endpoint(target, endpoint_url), snapshot, Path(dest_dir), _identities(obj))
    emit(rep.as_dict(), as_json, lambda r: "\n".join(
        [f"restored snapshot {r['snapshot'][:8]} to {r['dest']}: {r['files']} files, {_size(r['bytes'])}, "
         f"{r['key_tables']} key tables"]
        + [f"note: {k}: destroyed or shredded since the snapshot" for k in r["key_tables_missing"]]
        + [f"note: {k}: no mirrored generation opens with this snapshot's rings" for k in r["key_tables_unreadable"]]
        + [f"next: vault --vault {r['dest']} check --read-data (and compare the fingerprint)"]))


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
        f"{'would keep' if r['dry_run'] else 'kept'} {len(r['kept'])} snapshots, "
        f"{'would forget' if r['dry_run'] else 'forgot'} {len(r['forgotten'])}; "
        f"{r['packs_deleted']} packs ({_size(r['bytes_freed'])}) {'to delete' if r['dry_run'] else 'deleted'}"
        + "".join(f"\nkept {sid[:8]}: {why}" for sid, whys in r["kept"].items() for why in whys
                  if why.startswith("holds the only copy"))))
