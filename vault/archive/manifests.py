"""Dossier manifests: signed, validated, read and written; archive numbers resolved; sealed profiles [R-3.1, R-3.2]."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence


from vault.archive import authority, committed, keyfiles, members
from vault.archive.manifestrecord import Document, Manifest, ProfileVersion
from vault.errors import FormatError, InputError, IntegrityError, NotFoundError
from vault.i18n import Message, N_
from vault.store import ids, records
from vault.store.keytable import KeyTable, open_values, read_key_table, seal_values

if TYPE_CHECKING:
    from vault.crypto import age
    from vault.archive.vault import Actor, Vault

PROFILE_FIELDS = ("name", "aliases", "address", "contact", "legal_rep", "notes")


def _seal_profile(table: KeyTable, profile: Mapping[str, Any], by: str, version: int, *, changed: Sequence[str],
                  at: str) -> ProfileVersion:
    clean = {k: v for k, v in profile.items() if k in PROFILE_FIELDS and v}
    kid, sealed = seal_values(clean, table)
    return ProfileVersion(version=version, key=kid, at=at, by=by, fields=tuple(changed), sealed=sealed)


def manifest_file(actor: Actor, manifest: Manifest) -> dict[str, bytes | None]:
    """The signed, validated manifest as ``{path: bytes}`` for ``actor.commit`` (its commit point).

    Written from ``to_record``: the keys keep the order the file had, so a manifest read and written
    again changes only what the procedure changed."""
    rec = manifest.to_record()
    signed = actor.sign(dict(rec, updated_at=actor.clock.stamp(), updated_by=actor.name))
    records.validate(signed, "manifest", what=Message(N_("manifest of {number}"), number=manifest.number))
    return {f"dossiers/{manifest.id}/manifest.toml": records.dump_toml(signed)}


def table_rel(dossier_id: str) -> str:
    return f"keys/{dossier_id}.age"


def read_table(v: Vault, dossier_id: str, identities: Sequence[age.Identity]) -> KeyTable:
    """The dossier's key table as the history names it (it must name this dossier: a table moved
    from another is refused)."""
    rel = table_rel(dossier_id)
    return read_key_table(v.root / rel, identities, dossier=dossier_id, data=keyfiles.read(v, rel))


def load_manifest(v: Vault, dossier_id: str, *, member_records: dict | None = None) -> Manifest:
    """The manifest the history last wrote, validated and typed; IntegrityError names the file otherwise.

    The table is validated once (``committed.load``) and its signature verified before it is typed."""
    what = f"dossiers/{dossier_id}/manifest.toml"
    try:
        m = committed.load(v, what, schema="manifest")
    except FormatError as e:
        raise IntegrityError.from_error(e) from None
    if m["id"] != dossier_id:
        raise IntegrityError(N_("{what}: belongs to another dossier"), what=what)
    members.verify_by_member(v, m, what=what, members=member_records)
    return Manifest.parse(m)


def canonical_number(v: Vault, text: str) -> str:
    """``text`` written as the vault wrote it: archive numbers are matched case-insensitively.

    The dossier part is looked up as given, then upper-cased (the built-in schemes issue upper-case
    numbers); the document sequence after ``/`` is digits. Unknown numbers come back unchanged.
    """
    head, sep, tail = text.partition("/")
    issued = authority.state(v)["numbers"]  # the history, never the index/numbers hint
    for candidate in (head, head.upper()):
        if candidate in issued:
            return candidate + sep + tail
    return text


def resolve(v: Vault, number: str) -> str:
    """Dossier id of an archive number (or of the dossier part of a document number).

    The history's dossier.create entries are the authority; ``index/numbers`` is only a hint.
    """
    ids.target_number(number)
    dossier_id = authority.state(v)["numbers"].get(number.split("/")[0])
    if dossier_id is None:
        raise NotFoundError(N_("no dossier numbered {number}"), hint=N_("see 'vault dossier list'"), number=number.split('/')[0])
    return dossier_id


def iter_manifests(v: Vault) -> Iterator[Manifest]:
    """Every manifest the history created, verified, in archive-number order."""
    mem = members.all_members(v)
    out = [load_manifest(v, d, member_records=mem) for d in authority.state(v)["dossiers"]]
    yield from sorted(out, key=lambda m: m.number)


def page(v: Vault, offset: int, limit: int) -> tuple[int, list[Manifest]]:
    """(how many dossiers, the manifests of ``limit`` of them from ``offset``), in archive-number
    order; reads only those manifests, whatever the vault's size."""
    numbers = authority.state(v)["numbers"]
    if hasattr(numbers, "keys_sorted"):  # the client's stored state: a page of keys without the map
        total, keys = numbers.count(), numbers.keys_sorted(offset, limit)
    else:
        total, keys = len(numbers), sorted(numbers)[offset:offset + limit]
    mem = members.all_members(v)
    return total, [load_manifest(v, numbers[k], member_records=mem) for k in keys]


def summary(m: Manifest) -> dict[str, Any]:
    """The cleartext facts of a dossier (safe to show to any member)."""
    kept = [d for d in m.documents if not d.is_destroyed]
    live = [d for d in kept if not d.superseded_by]
    # A destroyed document is a ghost, not a document the dossier holds: counted apart.
    return {**m.facts(), "revision": m.revision, "documents": len(kept), "current_documents": len(live), "destroyed_documents": len(m.documents) - len(kept)}


def read_profile(actor: Actor, m: Manifest, table: KeyTable | None = None) -> dict[str, Any]:
    """Decrypt the newest profile version (needs read access to the dossier)."""
    table = table or read_table(actor.vault, m.id, actor.read_identities())
    p = m.profile[-1]
    what = Message(N_("profile v{version} of {number}"), version=p.version, number=m.number)
    if p.sealed is None:  # only a destroyed dossier's profile goes without (FORMAT §9)
        raise NotFoundError(N_("dossier {obj} was destroyed"), obj=m.number)
    return open_values(p.sealed, table, what=what)


def parse_date(text: str) -> str:
    """A calendar date ``YYYY-MM-DD``; one clear error otherwise."""
    try:
        return dt.date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_date(text)
    except ValueError:
        return _bad_date(text)


#: The earliest date a record may carry without ``--force-date``.
EARLIEST_DATE = "1900-01-01"


def parse_record_date(text: str, *, today: str, force: bool = False) -> str:
    """A date the vault records (material, events, closing): a calendar date neither in the future
    nor before 1900 — a typo there would start or stop a retention clock — unless ``force``."""
    date = parse_date(text)
    if not force and (wrong := out_of_range(date, today)):
        raise InputError(N_("date {date} is in the future") if wrong == "future" else N_("date {date} is before 1900"),
                         hint=N_("check the date; pass --force-date if it is really meant"), date=date)
    return date


def out_of_range(date: str, today: str) -> str | None:
    """Where a recorded date (``YYYY-MM-DD``) may not be: ``"future"`` after ``today``, ``"early"``
    before 1900, else None. Every date the vault records is held to it, whoever chose it."""
    return "future" if date > today else "early" if date < EARLIEST_DATE else None


def _bad_date(text: str) -> str:
    raise InputError(N_("bad date {text!r}"), hint=N_("use YYYY-MM-DD, e.g. 2026-03-31"), text=text)


CATEGORIES = ("basic-info", "contract", "service-record", "communication", "feedback", "other")


CUSTOMER_TYPES = ("enterprise", "individual")


#: The keys of a document entered by ``append_document``, in the order its table is written.
_NEW_DOCUMENT = ("number", "id", "key", "category", "date", "original", "version", "added_at", "added_by", "size",
                 "sha256", "meta_key", "meta", "paper_location", "replaces")


def append_document(m: Manifest, table: KeyTable, *, doc_id: str, key: str, category: str, date: str,
                    original: bool, by: str, at: str, size: int, sha256: str, meta: Mapping[str, Any],
                    paper_location: str | None = None, replaces: Document | None = None) -> tuple[Manifest, Document]:
    """Manifest ``m`` with a document appended, and that document: the next document number, and the
    metadata (title, source, file name, ...) sealed under a new key of the dossier's ``table``;
    ``replaces`` (a current document of ``m``) becomes its previous version.

    The one way a document enters a dossier (added by a member or accepted from the intake), by
    member ``by`` at time ``at``; the caller has written its ciphertext ``doc_id`` under key ``key``
    and saves table and manifest.
    """
    meta_kid, meta_sealed = seal_values(meta, table)
    entry = Document(number=f"{m.number}/{m.next_doc:04d}", id=doc_id, key=key, category=category, date=date,
                     original=original, version=replaces.version + 1 if replaces else 1, added_at=at, added_by=by,
                     size=size, sha256=sha256, meta_key=meta_kid, meta=meta_sealed, paper_location=paper_location or None,
                     replaces=replaces.number if replaces else None, keys_=_NEW_DOCUMENT)
    m = replace(m, next_doc=m.next_doc + 1, documents=(*m.documents, entry))
    if replaces is not None:
        m = m.with_documents(replace(replaces, superseded_by=entry.number))
    return m, entry
