"""Record files as the history commits them: the bytes, the parsed record, who signed it.

A record counts only as the newest hash the history names for its path (``authority.state``): a
file no entry names, or an older signed version put back, is refused by name. Every procedure
reads its records here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault.archive.authority import state
from vault.errors import IntegrityError
from vault.i18n import N_
from vault.store import NotRegularError, layout, not_regular, records, staging, tomlread
from vault.store.typed import R

if TYPE_CHECKING:
    from vault.archive.handle import Vault

#: How often a read beside a writer tries again before it calls a file a mismatch.
_READ_TRIES = 8


def committed(v: Vault, rel: str) -> tuple[str | None, int, str] | None:
    """(hash or None if deleted, entry number, signer of that entry) the history names for ``rel``."""
    ent = state(v)["files"].get(rel)
    return None if ent is None else (ent[0], ent[1], ent[2])


def read(v: Vault, rel: str) -> bytes:
    """The bytes of record ``rel`` if they are what the history says; IntegrityError otherwise.

    A record no entry names counts for nothing, however well signed; an older signed version put
    back is not the newest hash the history names for its path. Read beside a writer (no lock), a
    record may be renamed from its ``.pending`` between two reads, or be newer than the entries
    replayed so far: the file is read again, and the history replayed further, before anything is
    called a mismatch.
    """
    for _ in range(_READ_TRIES):  # (bounded: a writer committing without pause cannot keep it here)
        st = state(v)
        count = st["count"]
        ent = st["files"].get(rel)
        if ent is None:
            raise IntegrityError(N_("{rel}: no history entry names this file (it counts for nothing)"),
                                 hint=N_("run 'vault check'"), rel=rel)
        h, seq = ent[0], ent[1]
        if h is None:
            raise IntegrityError(N_("{rel}: removed by history entry {seq}"), rel=rel, seq=seq)
        try:
            data, found = staging.named_bytes(v.root / rel, h)
        except NotRegularError:
            raise not_regular(rel) from None
        if data is not None:
            return data
        if state(v)["count"] == count:  # (the same dict, advanced) nothing newer: what is there is wrong
            break
    if not found:
        raise IntegrityError(N_("{rel}: missing (history entry {seq} wrote it)"), hint=N_("restore it from a backup"),
                             rel=rel, seq=seq)
    raise IntegrityError(N_("{rel}: does not match history entry {seq} (changed, or an older version put back)"),
                         hint=N_("run 'vault check'"), rel=rel, seq=seq)


def load(v: Vault, rel: str, *, schema: str | None = None) -> dict[str, Any]:
    """A committed TOML record (``read``), parsed and validated against ``schema``, by default the
    schema of its path (``layout.SCHEMAS``)."""
    data = read(v, rel)
    try:
        rec = tomlread.loads(data.decode())
    except (tomlread.TOMLDecodeError, UnicodeDecodeError):
        raise IntegrityError(N_("{rel}: not valid TOML"), rel=rel) from None
    schema = schema or layout.schema_for(rel)
    if schema:
        records.validate(rec, schema, what=rel)
    return rec


def load_record(v: Vault, rel: str, kind: type[R]) -> R:
    """A committed record (``load``) as its typed record ``kind``, validated against the kind's schema."""
    return kind.parse(load(v, rel, schema=kind.KIND))


def exists(v: Vault, rel: str) -> bool:
    ent = state(v)["files"].get(rel)
    return ent is not None and ent[0] is not None


def adopted(v: Vault, rel: str) -> bool:
    """Whether ``rel`` is as ``vault migrate`` adopted it: named by entry 1 of a migrated vault,
    signed by the migrating supervisor, so its author is the one its own signature names (verified
    by the version-1 rules when it was adopted), not that entry's signer."""
    ent = state(v)["files"].get(rel)
    return ent is not None and ent[1] == 1 and bool(v.config.get("migrated_from"))


def written_at(v: Vault, rel: str) -> str:
    """When the entry that last wrote ``rel`` says it was written (by its signer's clock)."""
    return state(v)["files"][rel][3]


def signer_of(v: Vault, rel: str) -> str:
    """Who signed the entry that last wrote ``rel``: authorship is the entry's, never a typed field."""
    return state(v)["files"][rel][2]
