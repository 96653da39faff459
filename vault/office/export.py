"""Exports: a dossier through an export-format plugin, or one document to a file; copy-approved and audited [R-3.4.2].

Writing plaintext — document content or sealed fields — to a file uses up an approved copy request
(``vault.access.consume_copy_approval``); a catalogue of cleartext facts does not need one. What an
exporter is shown is decided here, before it runs: the facts anyone listing dossiers may see, and
sealed fields and content only when the caller's identity opens the dossier's key table, the
exporter declared it reads them, and a copy approval was used up for this export.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault.archive.manifestrecord import Manifest
from vault import plugins
from vault.archive import audit, grants
from vault.archive.manifests import load_manifest, read_profile, resolve
from vault.errors import ConflictError, NotFoundError, PermissionDeniedError, PluginError, VaultError
from vault.i18n import Message, N_
from vault.archive.exportview import READS, ExportDocument, ExportDossier, check_destination, claimed
from vault.store.counting import Progress
from vault.store.keytable import KeyTable
from vault.store import TMP_PREFIX, atomic_writer, fsync_dir
from vault.store.syncing import sync_files

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

#: The two ways an exporter writes: to a binary stream, or into an empty directory.
KINDS = ("file", "directory")


def _vault_error_of(exc: PluginError) -> VaultError | OSError:
    # A view refusing (PermissionDeniedError) or finding damage (IntegrityError) inside plugin code
    # reaches the user as itself, not as "plugin failed"; so does the system refusing a write to the
    # destination (a full disk, a file too large, no permission), with its hint about free space.
    cause = exc.__cause__
    if isinstance(cause, OSError) or (isinstance(cause, VaultError) and not isinstance(cause, PluginError)):
        return cause
    return exc


def build_exporter(fmt: str, options: Mapping[str, Any] | None = None, *,
                   pm: plugins.VaultPluginManager | None = None) -> plugins.PluginObject:
    """Look ``fmt`` up in the export-format registry and build it; its declarations are checked.

    :raises NotFoundError: no such format. :raises PluginError: it declares an unknown kind or read.
    """
    registry = plugins.export_formats(pm or plugins.get_plugin_manager())
    registration = registry.get(fmt)
    if registration is None:
        raise NotFoundError(N_("no export format {fmt!r}"), hint=N_("formats: {value}"), fmt=fmt, value=', '.join(sorted(registry)) or 'none')
    try:
        exporter = registration(dict(options or {}))
    except PluginError as exc:
        raise _vault_error_of(exc) from None
    problem = declaration_problem(exporter)
    if problem:
        raise PluginError(N_("plugin {plugin}: export format {fmt!r} {problem}"), plugin=registration.plugin, fmt=fmt, problem=problem)
    return exporter


def declaration_problem(exporter: Any) -> str | None:
    """What is wrong with an exporter's ``kind``, ``suffix`` and ``reads``, or ``None``."""
    if getattr(exporter, "kind", None) not in KINDS:
        return Message(N_("has kind {kind!r}, not one of {KINDS}"), kind=getattr(exporter, 'kind', None), KINDS=', '.join(KINDS))
    if not isinstance(getattr(exporter, "suffix", None), str):
        return Message(N_("has no str suffix"))
    if not callable(getattr(exporter, "export", None)):
        return Message(N_("has no export() method"))
    reads = reads_of(exporter)
    if not reads <= READS:
        return Message(N_("declares reads {reads}, not among {READS}"), reads=sorted(reads - READS), READS=sorted(READS))
    return None


def reads_of(exporter: Any) -> frozenset[str]:
    """What an exporter declared it reads; an exporter that declares nothing is taken to read everything."""
    return frozenset(getattr(exporter, "reads", READS))


def open_table(actor: Actor, m: Manifest) -> KeyTable | None:
    """The dossier's key table if the caller's identity opens it (archive ring or active grant), else None."""
    v = actor.vault
    if not (v.policy.may(actor.roles, "dossier.read") or grants.active_grant(v, m.id, actor.name)):
        return None  # probing must not leave a "refused read" in the audit trail
    try:
        return grants.open_key_table(actor, m.id, number=m.number)
    except PermissionDeniedError:
        return None


def not_covered(v: Vault, m: Manifest, request: str) -> list[str]:
    """The live documents of ``m`` that copy approval ``request`` does not cover: those added after the
    history entry that decided it [R-3.4.2]. Documents are appended to a manifest in the order they are
    added, and each ``doc.add`` entry names the first and last it added (``number``, ``ref``), each
    ``intake.accept`` entry the one (``number``): what follows the last document named up to the
    decision, and what an entry after it named first, is later. In a migrated vault, documents no entry
    up to the decision named may be ones ``vault migrate`` adopted: there only the second rule holds."""
    seq = grants.approved_entry(v, request)[0]
    numbers = [d.number for d in m.documents]
    last_before, first_after = -1, len(numbers)
    for e in audit.entries(v):
        if e.get("obj") != m.id or e.get("action") not in ("doc.add", "intake.accept") \
                or e.get("outcome", "ok") != "ok":
            continue
        named = [e.get("number")] + ([e.get("ref")] if e["action"] == "doc.add" else [])
        at = [numbers.index(n) for n in named if n in numbers]
        if not at:
            continue
        if e.get("seq", 0) <= seq:
            last_before = max(last_before, *at)
        else:
            first_after = min(first_after, *at)
    start = first_after
    if last_before >= 0 or not v.config.get("migrated_from"):
        start = min(start, last_before + 1)
    return [d.number for d in m.documents[start:] if not d.is_destroyed]


def make_views(actor: Actor, m: Manifest, table: KeyTable | None, granted: frozenset[str], *, fmt: str,
               request: str | None, progress: Progress | None = None,
               left_out: frozenset[str] = frozenset()) -> tuple[ExportDossier, list[ExportDocument]]:
    """The dossier and document views an exporter is given; ``table`` is used only for what is ``granted``;
    the documents ``left_out`` (numbers) are not given at all, nor named as superseding another."""
    v = actor.vault
    if left_out:  # the dossier as the approval saw it: a version it covers is not superseded by one it does not
        m = dataclasses.replace(m, documents=tuple(
            dataclasses.replace(d, superseded_by=None) if d.superseded_by in left_out else d
            for d in m.documents if d.number not in left_out))
    usable = table if granted else None
    profile = (lambda: read_profile(actor, m, usable)) if usable is not None and "sealed" in granted else None
    # An exporter is shown the manifest's tables as the file has them (``to_record``), never the typed values.
    dossier = ExportDossier(m.to_record(), granted=granted, profile=profile, exported_by=actor.name,
                            exported_at=actor.clock.stamp(), fmt=fmt, request=request)
    docs = []
    live_docs = [d for d in m.documents if usable is not None and not d.is_destroyed]
    step = (progress(sum(_size(v.layout.document(m.id, d.id)) for d in live_docs))
            if progress and "content" in granted and live_docs else None)
    for d in m.documents:
        live = usable if not d.is_destroyed else None  # a destroyed document's keys are gone
        docs.append(ExportDocument(d.to_record(), dossier=m.number, granted=granted, table=live,
                                   path=v.layout.document(m.id, d.id) if live is not None else None, step=step))
    return dossier, docs


def write_export(exporter: Any, dossier: ExportDossier, documents: list[ExportDocument], dest: Path) -> None:
    """Run ``exporter`` into ``dest`` all at once: a file replaced atomically, or a directory renamed into
    place (over the empty directory ``claimed`` holds there, if any)."""
    if exporter.kind == "file":
        with atomic_writer(dest, mode=0o600) as out:
            _run(exporter, dossier, documents, out)
        return
    tmp = dest.with_name(f"{TMP_PREFIX}{dest.name}.{secrets.token_hex(4)}")
    tmp.mkdir(mode=0o700)
    try:
        _run(exporter, dossier, documents, tmp)
        sync_files([p for p in tmp.rglob("*") if p.is_file()])
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(dest.parent)


def _run(exporter: Any, dossier: ExportDossier, documents: list[ExportDocument], dest: Any) -> None:
    try:
        exporter.export(dossier=dossier, documents=list(documents), dest=dest)
    except PluginError as exc:
        raise _vault_error_of(exc) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def export_dossier(actor: Actor, number: str, fmt: str, dest: Path | str, *, options: Mapping[str, Any] | None = None,
                   sealed: bool = True, progress: Progress | None = None) -> dict[str, Any]:
    """Export a dossier with the export format ``fmt`` to ``dest``; returns what was done.

    :param sealed: ``False`` never gives the exporter sealed fields or content (a cleartext
        catalogue, no copy approval needed), even for a member who may read the dossier.
    :raises PermissionDeniedError: the format needs content the caller may not read, or writing
        plaintext needs a copy approval the caller does not have.
    """
    actor.require("dossier.list", number=number)
    v = actor.vault
    m = load_manifest(v, resolve(v, number))
    number = m.number
    dest = check_destination(v, dest)
    exporter = build_exporter(fmt, options)
    reads = reads_of(exporter)
    table = open_table(actor, m) if sealed and reads else None
    if "content" in reads and table is None:
        audit.record(actor, "dossier.export", outcome="refused", number=number)
        raise PermissionDeniedError(
            N_("export format {fmt} writes document content, which you may not read in {number}"),
            hint=N_("reading a dossier needs the archive role or an approved, granted consultation request"), fmt=fmt, number=number)
    granted = reads if table is not None else frozenset()
    # The output is held before the approval is used: an export that cannot have it keeps the approval.
    with claimed(dest, directory=exporter.kind == "directory"):
        # Consumed before anything is written: plaintext leaves the vault only under a used approval.
        request = grants.consume_copy_approval(actor, number) if granted else None
        # An approval covers the documents that existed when it was decided; later ones are left out.
        left_out = not_covered(v, m, request) if request is not None else []
        dossier, documents = make_views(actor, m, table, granted, fmt=fmt, request=request, progress=progress,
                                        left_out=frozenset(left_out))
        try:
            write_export(exporter, dossier, documents, dest)
        except BaseException:
            audit.record(actor, "dossier.export", outcome="failed", number=number, ref=request)
            raise
    audit.record(actor, "dossier.export", number=number, ref=request)
    return {"number": number, "format": fmt, "output": str(dest), "documents": len(documents),
            "sealed": bool(granted), "request": request, "left_out": left_out}


def export_document(actor: Actor, docno: str, dest: Path | str, *, progress: Progress | None = None) -> dict[str, Any]:
    """Write the plaintext of one document to the file ``dest``, using up a copy approval for it."""
    actor.require("doc.view", number=docno)
    v = actor.vault
    m = load_manifest(v, resolve(v, docno))
    entry = m.require_document(docno)
    if entry.is_destroyed:
        raise ConflictError(N_("document {docno} has been destroyed"), docno=docno)
    dest = check_destination(v, dest)
    table = grants.open_key_table(actor, m.id, number=docno)
    with claimed(dest, directory=False):
        request = grants.consume_copy_approval(actor, docno)
        path = v.layout.document(m.id, entry.id)
        doc = ExportDocument(entry.to_record(), dossier=m.number, granted=frozenset({"content"}), table=table,
                             path=path, step=progress(_size(path)) if progress else None)
        try:
            with doc.open() as src, atomic_writer(dest, mode=0o600) as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except BaseException:
            audit.record(actor, "doc.export", outcome="failed", number=docno, ref=request)
            raise
    audit.record(actor, "doc.export", number=docno, ref=request)
    return {"number": docno, "output": str(dest), "request": request}
