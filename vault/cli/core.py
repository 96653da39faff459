"""Core commands: identities, the vault, dossiers, documents, check, plugins, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import click

from vault.office import documents
from vault.archive import manifests
from vault.store import identity
from vault.cli import (NUMBER, Ctx, _passphrase, bars, cell, cli, current, emit, field, json_opt, local_time, pad,
                       problems_summary, report_lines, state)
from vault.cli import options
from vault.store import names
from vault.cli.lazy import LazySubGroup
from vault.i18n import N_, _
from vault.archive.vault import Vault
from vault.errors import InputError


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the new identity.")
@click.option("--public", "public_of", type=click.Path(dir_okay=False),
              help="Instead: print the public key line of this existing identity file.")
@json_opt
def keygen(out: str | None, public_of: str | None, as_json: bool) -> None:
    """Create a member identity (age + signing key), passphrase-protected, mode 0600.

    Prints its public key line; with --public FILE, prints that of an existing identity file."""
    if (out is None) == (public_of is None):
        raise click.UsageError(_("pass either --out FILE (a new identity) or --public FILE (an existing one)"))
    if public_of is not None:
        path = Path(public_of)
        ident = identity.load_identity(path, _passphrase(_("Passphrase for {name}").format(name=path.name)))
        out = public_of
    else:
        assert out is not None  # exactly one of --out and --public, checked above
        ident = identity.MemberIdentity.generate()
        identity.save_identity(Path(out), ident, _passphrase(_("New passphrase"), confirm=True))
    line = ident.public.line()
    emit({"public_key": line, "file": out}, as_json, line)


def public_key(key: str | None, key_file: str | None) -> identity.PublicKey:
    """The public key line given on the command line or in a file (the lines are ~2,000 characters)."""
    if (key is None) == (key_file is None):
        raise click.UsageError(_("pass the public key line with --key LINE or --key-file FILE"))
    if key_file is not None:
        try:
            key = Path(key_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise click.BadParameter(_("cannot read {file}: {error}").format(file=key_file, error=getattr(e, "strerror", None) or e),
                                     param_hint="--key-file") from None
    assert key is not None  # exactly one of --key and --key-file, checked above
    return identity.PublicKey.parse(key)


#: A command function, as click's decorators take and give it.
F = TypeVar("F", bound=Callable[..., Any])

key_opts = [
    click.option("--key", help="The public key line (from 'vault keygen')."),
    click.option("--key-file", type=click.Path(dir_okay=False), help="A file holding the public key line."),
]


def with_key_opts(f: F) -> F:
    for opt in reversed(key_opts):
        f = opt(f)
    return f


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--supervisor", required=True,
              help="The founding supervisor: an id (laowang), or their name as people write it (老王).")
@with_key_opts
@json_opt
@click.option("--numbering", "scheme", default="standard", show_default=True,
              help="Numbering scheme of the archive numbers [R-3.2.2] (see 'vault plugins list').")
@click.option("--numbering-option", "options", multiple=True, metavar="KEY=VALUE",
              help="An option of the scheme, e.g. pattern={type}-{year}-{seq:06d}.")
@click.option("--display-name", help="The supervisor's name as people write it, in any script.")
@click.option("--tz", "time_zone", help="The office's time zone, e.g. Asia/Shanghai (kept in the policy).")
@click.pass_obj
def init(obj: Ctx, directory: str, supervisor: str, key: str | None, key_file: str | None, scheme: str,
         options: tuple[str, ...], display_name: str | None, time_zone: str | None, as_json: bool) -> None:
    """Create a new vault; prints its fingerprint to record offline."""
    opts = {}
    for o in options:
        k, sep, val = o.partition("=")
        if not sep or not k.strip():
            raise click.UsageError(_("--numbering-option {option!r}: write KEY=VALUE").format(option=o))
        opts[k.strip()] = val
    rule = {"scheme": scheme, "options": opts} if (scheme != "standard" or opts) else None
    if rule is not None:
        from vault.office import dossier  # here: only a chosen numbering rule needs the scheme plugins

        rule = dossier.try_numbering(rule, today=obj.clock.today())
    v = Vault.init(Path(directory), supervisor=supervisor, key=public_key(key, key_file), numbering=rule,
                   display_name=display_name, time_zone=time_zone, clock=obj.clock)
    founder = v.config["founder"]
    emit({"vault": directory, "fingerprint": v.fingerprint, "supervisor": founder["name"]}, as_json,
         _("vault created at {directory}\nfingerprint: {fingerprint}\n(record the fingerprint offline)").format(
             directory=directory, fingerprint=v.fingerprint)
         + "\n" + _("supervisor: {member}").format(member=names.shown(founder["name"], founder.get("display_name"))))


@cli.group("dossier", cls=LazySubGroup)
def dossier_grp() -> None:
    """Customer dossiers."""


@dossier_grp.command("create")
@click.option("--type", "customer_type", required=True, type=click.Choice(manifests.CUSTOMER_TYPES))
@click.option("--business", required=True, help="Business type, e.g. network-services.")
@click.option("--dept", required=True, help="Business department in charge.")
@click.option("--name", required=True, help="Customer name (sealed).")
@options.address
@click.option("--alias", multiple=True, help="Another name it is known by: trade, English or pinyin name (sealed; repeatable).")
@click.option("--contact", multiple=True, help="Contact: phone or e-mail (sealed; repeatable).")
@options.legal_rep
@options.note
@json_opt
@click.pass_obj
def dossier_create(obj: Ctx, customer_type: str, business: str, dept: str, name: str, address: str | None,
                   alias: tuple[str, ...], contact: tuple[str, ...], legal_rep: str | None, note: str | None,
                   as_json: bool) -> None:
    """Create a dossier; prints its archive number."""
    from vault.office import dossier  # here: only `dossier create` needs the scheme plugins

    profile = {"name": name, "aliases": list(alias), "address": address, "contact": list(contact),
               "legal_rep": legal_rep, "notes": note}
    number = dossier.create(obj.actor(), customer_type=customer_type, business=business, dept=dept,
                            profile={k: v for k, v in profile.items() if v})
    emit({"number": number}, as_json, number)


#: Rows ``dossier list`` shows at a time: a page costs the same in a vault of any size.
LIST_LIMIT = 20


def _summary_line(s: dict) -> str:
    c = current()
    return (f"{s['number']:<20} {cell(state(s['status']), 9)} {pad(c.label('class', s['class']), 40)} "
            f"{pad(c.label('department', s['dept']), 12)} " + _("{count} docs").format(count=s["current_documents"]))


@dossier_grp.command("list")
@options.paging(LIST_LIMIT)
@click.option("--all", "everything", is_flag=True, help="Every dossier, however many.")
@json_opt
@click.pass_obj
def dossier_list(obj: Ctx, limit: int, offset: int, everything: bool, as_json: bool) -> None:
    """List dossiers in archive-number order, a page at a time (cleartext facts only; no key needed)."""
    if limit < 1 or offset < 0:
        raise InputError(N_("--limit must be at least 1 and --offset not negative"),
                         hint=N_("e.g. --limit 100 --offset 200"))
    total, ms = manifests.page(obj.vault, offset, 1 << 62 if everything else limit)
    rows = [manifests.summary(m) for m in ms]

    def text(rs: list) -> str:
        if not rs:
            return _("(no dossiers)")
        more = total - (offset + len(rs))
        tail = "\n" + _("{first}-{last} of {total}").format(first=offset + 1, last=offset + len(rs), total=total) + (
            _("; next page: --offset {offset}").format(offset=offset + len(rs)) if more > 0 else "")
        return "\n".join(_summary_line(s) for s in rs) + (tail if more > 0 or offset else "")

    emit(rows, as_json, text)


@dossier_grp.command("show")
@click.argument("number", type=NUMBER)
@json_opt
@click.pass_obj
def dossier_show(obj: Ctx, number: str, as_json: bool) -> None:
    """Show a dossier; its sealed profile too if you may read it."""
    from vault.office import dossier

    data = dossier.show(obj.actor(), number)
    emit(data, as_json, lambda d: "\n".join(
        f"{label}: {state(v) if key == 'status' else local_time(v) if isinstance(v, str) else v}"
        for key, label, v in _flatten(obj.humane(d))))


def _flatten(d: dict, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(key, label in the reader's language, value) of nested data; only field names are translated."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{field(k)}.")
        else:
            yield k, f"{prefix}{field(k)}", ", ".join(v) if isinstance(v, list) else v


@cli.group("doc", cls=LazySubGroup)
def doc_grp() -> None:
    """Documents in dossiers."""


@doc_grp.command("add")
@click.argument("number", type=NUMBER)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--category", required=True, help=f"One of: {', '.join(manifests.CATEGORIES)}.")
@click.option("--source", required=True, help="Where the material came from [R-3.1.3].")
@options.material_date
@click.option("--original/--copy", default=None, help="Original, or a copy (then --copy-note).")
@click.option("--copy-note", help="Why only a copy could be had.")
@options.title
@click.option("--replaces", help="Document number this is a new version of.")
@click.option("--paper-location", help="Where the paper original is kept.")
@options.force_date
@click.option("--filename", help="With '-': the file name to record for standard input (default: stdin).")
@json_opt
@click.pass_obj
def doc_add(obj: Ctx, number: str, files: tuple[str, ...], category: str, source: str, date: str, original: bool | None,
            copy_note: str | None, title: str | None, replaces: str | None, paper_location: str | None,
            filename: str | None, force_date: bool, as_json: bool) -> None:
    """Encrypt files into a dossier ('-' reads standard input); prints each new document number."""
    if original is None:
        raise click.UsageError(_("say whether this is the --original or a --copy"))
    if files.count("-") > 1:
        raise click.UsageError(_("standard input ('-') can be given once"))
    if filename is not None and "-" not in files:
        raise click.UsageError(_("--filename names standard input; pass '-' as a file"))
    sources = [documents.Stream(filename or "stdin", sys.stdin.buffer) if f == "-" else Path(f) for f in files]
    actor = obj.actor()
    with bars(_("encrypting")) as bar:
        nums = documents.add(actor, number, sources, category=category, source=source, date=date,
                             original=original, copy_note=copy_note, title=title, replaces=replaces,
                             paper_location=paper_location, progress=bar, force_date=force_date)
    emit({"numbers": nums, "number": nums[0] if len(nums) == 1 else nums}, as_json, "\n".join(nums))


@doc_grp.command("list")
@click.argument("number", type=NUMBER)
@json_opt
@click.pass_obj
def doc_list(obj: Ctx, number: str, as_json: bool) -> None:
    """List a dossier's documents (titles only for members who may read it)."""
    rows = documents.list_docs(obj.actor(), number, with_meta=True)
    from vault.archive import destructions  # here: only a destroyed dossier's listing names its destruction

    gone = destructions.destroyed_by(obj.vault, number)
    head = (_("dossier {number} destroyed by {no}, certificate 'vault destroy certificate {no}'").format(
        number=number, no=gone) + "\n") if gone else ""
    superseded = _("  (superseded)")
    emit(rows, as_json, lambda rs: head + "\n".join(
        f"{r['number']:<26} {r['category']:<15} {r['date']}  v{r['version']}"
        f"{superseded if r.get('superseded_by') else ''}  "
        + (_("destroyed by {no}, certificate 'vault destroy certificate {no}'").format(no=r["destroyed"]["certificate"])
           if r.get("destroyed") else r.get("title", ""))
        for r in rs) or _("(no documents)"))


@doc_grp.command("history")
@click.argument("docno", type=NUMBER)
@json_opt
@click.pass_obj
def doc_history(obj: Ctx, docno: str, as_json: bool) -> None:
    """All versions of a document, oldest first."""
    rows = documents.history(obj.actor(), docno)
    emit(rows, as_json, lambda rs: "\n".join(f"v{r['version']}  {r['number']:<26} " + _("{time} by {member}").format(
        time=obj.when(r["added_at"]), member=obj.who(r["added_by"])) for r in rs))


@doc_grp.command("view")
@click.argument("docno", type=NUMBER)
@click.option("--output", type=click.Path(dir_okay=False), help="Write to FILE instead of standard output.")
@json_opt
@click.pass_obj
def doc_view(obj: Ctx, docno: str, output: str | None, as_json: bool) -> None:
    """Decrypt a document (outside the archive department: to a terminal only)."""
    if as_json and not output:
        raise click.UsageError(_("--json needs --output FILE (without it the document itself is printed)"))
    if not output and sys.stdout is None:  # (started with standard output closed: nowhere to print)
        raise InputError(N_("standard output is closed"), hint=N_("give --output FILE"))
    actor = obj.actor()
    if output:
        output = str(documents.check_output(actor.vault, Path(output)))
    copy_ref = documents.require_save(actor, docno) if output or not sys.stdout.isatty() else None
    if output:
        from vault.store import atomic_writer

        # Atomic (no half file under the name) but not fsynced: a viewed copy is not archive data.
        with bars(_("decrypting")) as bar, atomic_writer(Path(output), mode=0o600, sync=False) as f:
            facts = documents.view(actor, docno, f, copy_ref=copy_ref, progress=bar)
        if as_json:  # the plaintext went to FILE; standard output stays quiet unless asked
            emit({**facts, "output": output}, True, "")
    else:
        out = sys.stdout.buffer
        documents.view(actor, docno, out, copy_ref=copy_ref)
        out.flush()


@cli.command()
@click.option("--read-data", is_flag=True, help="Also decrypt everything (needs your identity).")
@click.option("--anchor", metavar="LINE", help="Also verify the history extends this 'vault audit anchor' line.")
@json_opt
@click.pass_obj
def check(obj: Ctx, read_data: bool, anchor: str | None, as_json: bool) -> None:
    """Verify the history, signatures and ciphertext hashes (no key needed); name every damaged file."""
    from vault.archive import witness
    from vault.office import check as check_mod  # here: `check` reads every kind of record

    v = obj.vault
    point = witness.parse_anchor(v, anchor) if anchor else None
    actor = obj.actor() if read_data else None
    from vault.cli.progress import wanted

    with bars(_("checking")) as bar:
        rep = check_mod.check(v, actor=actor, progress=bar if wanted() else None, anchor=point)
    data = dict(rep.as_dict(), fingerprint=v.fingerprint)

    def text(d: dict) -> str:
        lines = report_lines(d["problems"], d["notes"])
        lines.append(_("{dossiers} dossiers, {documents} documents, {bytes} bytes checked; {summary}").format(
            dossiers=d["dossiers"], documents=d["documents"], bytes=d["bytes"], summary=problems_summary(d["problems"])))
        if d["unchanged"]:
            lines.append(_("{unchanged} documents unchanged since this client verified them (by file status, not read "
                           "again; --read-data reads every byte)").format(unchanged=d["unchanged"]))
        lines.append(_("fingerprint: {fingerprint}").format(fingerprint=d["fingerprint"]))
        return "\n".join(lines)

    emit(data, as_json, text)
    if not rep.ok:
        sys.exit(1)


@cli.command()
@json_opt
@click.pass_obj
def repair(obj: Ctx, as_json: bool) -> None:
    """Finish or drop what an interrupted command left half done (the archive department)."""
    from vault.office.repair import repair as repair_vault

    res = repair_vault(obj.actor())
    emit(res, as_json, lambda d: "\n".join(
        [*(_("finished: {path}").format(path=p) for p in d["commits_finished"]),
         *(_("removed: {path}").format(path=p)
           for p in [*d["temporaries_removed"], *d["documents_removed"], *d["index_files_removed"]]),
         *(_("re-issued the key release of {grant}").format(grant=g) for g in d["releases_reissued"]),
         *([_("checkpoint rewritten")] if d["checkpoint_rewritten"] else []), _("the vault is consistent again")]))


@cli.command()
@json_opt
@click.pass_obj
def migrate(obj: Ctx, as_json: bool) -> None:
    """Upgrade a format-1 vault to format 2, in place (a supervisor; back the vault up first).

    Safe to run again if interrupted. Prints the new fingerprint to keep offline.
    """
    from vault.archive import migrate as migrate_mod

    if not obj.vault_dir:
        raise InputError(N_("no vault given"), hint=N_("pass --vault DIR or set VAULT_DIR"))
    if not obj.identity_file or not Path(obj.identity_file).is_file():
        raise InputError(N_("migrating needs your identity"), hint=N_("pass --identity FILE or set VAULT_IDENTITY"))
    ident = identity.load_identity(Path(obj.identity_file), _passphrase(_("Passphrase for {name}").format(name=Path(obj.identity_file).name)))
    fp = migrate_mod.migrate(Path(obj.vault_dir), ident, clock=obj.clock)
    emit({"format": 2, "fingerprint": fp}, as_json, _("migrated to format 2; new fingerprint: {fingerprint} (keep it offline)").format(fingerprint=fp))


@cli.group("plugins")
def plugins_grp() -> None:
    """Installed plugins."""


@plugins_grp.command("list")
@json_opt
def plugins_list(as_json: bool) -> None:
    """List plugins: name, version, hooks, built-in or not."""
    from vault import plugins

    rows = plugins.describe_plugins(plugins.get_plugin_manager())
    kinds = {True: _("built-in"), False: _("third-party")}
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['name']:<28} {r.get('version') or '-':<10} {cell(kinds[bool(r['builtin'])], 12)} {', '.join(r['hooks'])}"
        for r in rs))


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@json_opt
def demo(directory: str, as_json: bool) -> None:
    """Build a small sample office in DIRECTORY and say what to try next."""
    from vault.cli import demo as demo_mod

    text = demo_mod.build(Path(directory))
    root = Path(directory).resolve()
    emit({"directory": str(root), "vault": str(root / "vault"), "identities": str(root / "identities"),
          "next_steps": text}, as_json, text)


