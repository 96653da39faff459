"""Dossier manifests: signed, validated, read and written; archive numbers resolved; sealed profiles [R-3.1, R-3.2]."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Iterator, Mapping

from vault import clock
from vault.archive import authority, members
from vault.errors import FormatError, InputError, IntegrityError, NotFoundError
from vault.i18n import Message, N_
from vault.store import ids, index, records
from vault.store.keytable import KeyTable, read_key_table, seal, unseal, write_key_table
from vault.store import tomlread, tomlwrite

PROFILE_FIELDS = ("name", "aliases", "address", "contact", "legal_rep", "notes")


def _seal_profile(table: KeyTable, profile: dict[str, Any], by: str, version: int, *, changed: list[str]) -> dict:
    clean = {k: v for k, v in profile.items() if k in PROFILE_FIELDS and v}
    kid, blob = seal(tomlwrite.dumps(clean).encode(), table)
    return {"version": version, "key": kid, "at": clock.stamp(), "by": by, "fields": changed,
            "sealed": base64.b64encode(blob).decode()}


def manifest_file(actor, manifest: dict[str, Any]) -> dict[str, bytes | None]:
    """The signed, validated manifest as ``{path: bytes}`` for ``actor.commit`` (its commit point)."""
    signed = actor.sign(dict(manifest, updated_at=clock.stamp(), updated_by=actor.name))
    records.validate(signed, "manifest", what=Message(N_("manifest of {number}"), number=manifest['number']))
    return {f"dossiers/{manifest['id']}/manifest.toml": records.dump_toml(signed)}


def write_table(v, table: KeyTable) -> None:
    """Write the key table, encrypted to the current rings, before the entry that commits its use.

    Key tables are not history records: the backup key mirror restores the newest table beside an
    older snapshot, and a table swapped by someone outside the rings gives them nothing — it is
    re-encrypted to the ring recipients, which the history binds — while the keys a manifest names
    must open its documents (``vault check --read-data``). Written first, an interrupted change
    leaves only unused entries in it.
    """
    write_key_table(v.layout.key_table(table.dossier), table, members.ring_recipients(v))


def read_table(v, dossier_id: str, identities) -> KeyTable:
    """The dossier's key table (it must name this dossier: a table moved from another is refused)."""
    return read_key_table(authority.current_path(v, f"keys/{dossier_id}.age"), identities, dossier=dossier_id)


def load_manifest(v, dossier_id: str, *, member_records: dict | None = None) -> dict[str, Any]:
    """The manifest the history last wrote, validated; IntegrityError names the file otherwise."""
    what = f"dossiers/{dossier_id}/manifest.toml"
    try:
        m = authority.load(v, what, schema="manifest")
    except FormatError as e:
        raise IntegrityError.from_error(e) from None
    if m["id"] != dossier_id:
        raise IntegrityError(N_("{what}: belongs to another dossier"), what=what)
    members.verify_by_member(v, m, what=what, members=member_records)
    return m


def canonical_number(v, text: str) -> str:
    """``text`` written as the vault wrote it: archive numbers are matched case-insensitively.

    The dossier part is looked up as given, then upper-cased (the built-in schemes issue upper-case
    numbers); the document sequence after ``/`` is digits. Unknown numbers come back unchanged.
    """
    head, sep, tail = text.partition("/")
    for candidate in (head, head.upper()):
        if index.lookup_number(v.root, candidate) is not None:
            return candidate + sep + tail
    return text


def resolve(v, number: str) -> str:
    """Dossier id of an archive number (or of the dossier part of a document number).

    The history's dossier.create entries are the authority; ``index/numbers`` is only a hint.
    """
    ids.target_number(number)
    dossier_id = authority.state(v)["numbers"].get(number.split("/")[0])
    if dossier_id is None:
        raise NotFoundError(N_("no dossier numbered {number}"), hint=N_("see 'vault dossier list'"), number=number.split('/')[0])
    return dossier_id


def iter_manifests(v) -> Iterator[dict[str, Any]]:
    """Every manifest the history created, verified, in archive-number order."""
    mem = members.all_members(v)
    out = [load_manifest(v, d, member_records=mem) for d in authority.state(v)["dossiers"]]
    yield from sorted(out, key=lambda m: m["number"])


def page(v, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many dossiers, the manifests of ``limit`` of them from ``offset``), in archive-number
    order; reads only those manifests, whatever the vault's size."""
    numbers = authority.state(v)["numbers"]
    if hasattr(numbers, "keys_sorted"):  # the client's stored state: a page of keys without the map
        total, keys = numbers.count(), numbers.keys_sorted(offset, limit)
    else:
        total, keys = len(numbers), sorted(numbers)[offset:offset + limit]
    mem = members.all_members(v)
    return total, [load_manifest(v, numbers[k], member_records=mem) for k in keys]


def summary(m: dict[str, Any]) -> dict[str, Any]:
    """The cleartext facts of a dossier (safe to show to any member)."""
    keys = ("number", "customer_type", "business", "dept", "class", "created", "status", "revision")
    kept = [d for d in m["documents"] if d.get("status") != "destroyed"]
    live = [d for d in kept if not d.get("superseded_by")]
    # A destroyed document is a ghost, not a document the dossier holds: counted apart.
    return {**{k: m[k] for k in keys}, "documents": len(kept), "current_documents": len(live),
            "destroyed_documents": len(m["documents"]) - len(kept)}


def read_profile(actor, m: Mapping[str, Any], table: KeyTable | None = None) -> dict[str, Any]:
    """Decrypt the newest profile version (needs read access to the dossier)."""
    table = table or read_table(actor.vault, m["id"], actor.read_identities())
    p = m["profile"][-1]
    plain = unseal(base64.b64decode(p["sealed"]), table, what=Message(N_("profile v{version} of {number}"), version=p['version'], number=m['number']))
    return tomlread.loads(plain.decode())


def parse_date(text: str) -> str:
    """A calendar date ``YYYY-MM-DD``; one clear error otherwise."""
    try:
        return dt.date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_date(text)
    except ValueError:
        return _bad_date(text)


#: The earliest date a record may carry without ``--force-date``.
EARLIEST_DATE = "1900-01-01"


def parse_record_date(text: str, *, force: bool = False) -> str:
    """A date the vault records (material, events, closing): a calendar date neither in the future
    nor before 1900 — a typo there would start or stop a retention clock — unless ``force``."""
    date = parse_date(text)
    if not force and not EARLIEST_DATE <= date <= clock.today():
        raise InputError(N_("date {date} is in the future") if date > clock.today() else N_("date {date} is before 1900"),
                         hint=N_("check the date; pass --force-date if it is really meant"), date=date)
    return date


def _bad_date(text: str) -> str:
    raise InputError(N_("bad date {text!r}"), hint=N_("use YYYY-MM-DD, e.g. 2026-03-31"), text=text)


CATEGORIES = ("basic-info", "contract", "service-record", "communication", "feedback", "other")


CUSTOMER_TYPES = ("enterprise", "individual")


def append_document(m: dict[str, Any], table: KeyTable, *, doc_id: str, key: str, category: str, date: str,
                    original: bool, by: str, size: int, sha256: str, meta: Mapping[str, Any],
                    paper_location: str | None = None) -> dict[str, Any]:
    """Append a document to manifest ``m`` and return its entry: the next document number, and the
    metadata (title, source, file name, ...) sealed under a new key of the dossier's ``table``.

    The one way a document enters a dossier (added by a member or accepted from the intake); the
    caller has written its ciphertext ``doc_id`` under key ``key`` and saves table and manifest.
    """
    meta_kid, meta_blob = seal(tomlwrite.dumps(dict(meta)).encode(), table)
    number = f"{m['number']}/{m['next_doc']:04d}"
    m["next_doc"] += 1
    entry = {
        "number": number, "id": doc_id, "key": key, "category": category, "date": date,
        "original": original, "version": 1, "added_at": clock.stamp(), "added_by": by,
        "size": size, "sha256": sha256,
        "meta_key": meta_kid, "meta": base64.b64encode(meta_blob).decode(),
    }
    if paper_location:
        entry["paper_location"] = paper_location
    m["documents"].append(entry)
    return entry
