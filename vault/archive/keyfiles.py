"""Key files bound to the history: written by the entry that commits their use, read only as it names them.

Key tables (``keys/<dossier>.age``), the index and intake keys (``keys/_index.age``,
``keys/_intake.age``), key releases (``keys/grants/*.age``) and the search index's files
(``index/search/…``) are encrypted, so a keyless ``vault check`` could not tell a changed one from
the real one, and an older one put back — still encrypted to a since-removed member, or missing the
keys of documents added since — would be used by the next write. So they are history records like
any other: a writer *stages* them here, under the exclusive lock, and the next ``commit`` (or
audited action) of the same command names their hashes in its entry, the commit point (FORMAT §18.2);
a reader gets them through ``read``, which refuses bytes the history does not name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault.archive import authority, committed
from vault.errors import IntegrityError
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.handle import Vault

def stage(v: Vault, rel: str, data: bytes | None) -> None:
    """Write ``rel`` (or delete it, ``None``) with the next entry of this command."""
    v.__dict__.setdefault("_staged_keys", {})[rel] = data


def staged(v: Vault) -> bool:
    return bool(v.__dict__.get("_staged_keys"))


def take(v: Vault) -> dict[str, bytes | None]:
    """The staged files, handed to the commit that names them (and forgotten here)."""
    return v.__dict__.pop("_staged_keys", {})


def drop(v: Vault) -> None:
    """Forget what a command staged and did not commit (its lock is released)."""
    v.__dict__.pop("_staged_keys", None)


def read(v: Vault, rel: str) -> bytes:
    """The bytes of ``rel`` as this command staged them, or as the history names them."""
    staged = v.__dict__.get("_staged_keys", {})
    if rel in staged:
        data = staged[rel]
        if data is None:
            raise IntegrityError(N_("{rel}: deleted by this command"), rel=rel)
        return data
    return committed.read(v, rel)


def exists(v: Vault, rel: str) -> bool:
    staged = v.__dict__.get("_staged_keys", {})
    if rel in staged:
        return staged[rel] is not None
    return committed.exists(v, rel)


def listing(v: Vault, prefix: str) -> list[str]:
    """Every path under ``prefix`` the history (with this command's staging) says exists."""
    files = authority.state(v)["files"]
    # The client's stored state answers a prefix from its index; a state replayed afresh is a dict.
    named = files.keys_with_prefix(prefix) if hasattr(files, "keys_with_prefix") else files
    out = {p for p in named if p.startswith(prefix) and committed.exists(v, p)}
    for p, data in v.__dict__.get("_staged_keys", {}).items():
        if p.startswith(prefix):
            (out.add if data is not None else out.discard)(p)
    return sorted(out)


def merge(v: Vault, files: dict[str, Any]) -> dict[str, Any]:
    """``files`` with this command's staged key files added (an explicit file wins)."""
    staged = take(v)
    return {**staged, **files} if staged else files
