"""``backups.toml``: every target a vault was backed up to, so that a destruction can reach each one.

A run with a member's identity binds the file to the history (entry ``backup.target``), so that
deleting it or putting an older one back — after which a destruction would not reach a target — is
named by ``vault check``; once bound, a new target is added only by a run with an identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import tomli_w

from vault.store import records
from vault.archive import committed
from vault.errors import FormatError, IntegrityError, PermissionDeniedError, VaultError
from vault.i18n import N_
from vault.store import write_atomic
from vault.store import read_regular

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

FILE = "backups.toml"


def bound(v: Vault) -> bool:
    """Whether the history names ``backups.toml`` (a member registered a target)."""
    return committed.committed(v, FILE) is not None


def _load(v: Vault) -> list[dict[str, Any]]:
    path = v.root / FILE
    try:
        raw = committed.read(v, FILE) if bound(v) else read_regular(path)
        data = records.parse_toml(raw, schema="backups", what=FILE)
    except FileNotFoundError:
        return []
    except FormatError as e:
        raise IntegrityError.from_error(e, hint=N_("restore it from a backup, or fix it by hand")) from None
    return data["targets"]


def known_targets(v: Vault) -> list[str]:
    """Every target URL the vault has been backed up to, in the order first used."""
    return [t["url"] for t in _load(v)]


def record_target(v: Vault, url: str, actor: Actor | Callable[[], Actor] | None = None) -> None:
    """Add ``url`` to ``backups.toml`` (atomically, under the exclusive lock) unless it is there;
    with ``actor`` in a ``backup.target`` history entry that binds the file.

    ``actor`` may be a function giving the actor: it is called only when the file must be written,
    so a run to a known target never needs the identity unlocked.
    """
    if url in known_targets(v) and (actor is None or bound(v)):
        return
    with v.lock(exclusive=True):
        targets = _load(v)
        known = any(t["url"] == url for t in targets)
        if known and (actor is None or bound(v)):
            return
        if callable(actor):
            try:
                actor = actor()
            except VaultError:
                if not known:
                    raise
                return  # binding a known target can wait for a run whose identity unlocks
        if actor is None and bound(v):
            raise PermissionDeniedError(N_("{url} is a new backup target, and this vault's targets are bound to its history"),
                                        hint=N_("run this first backup to it with your identity (--identity or VAULT_IDENTITY)"),
                                        url=url)
        if not known:
            targets.append({"url": url, "first_backup": v.clock.stamp()})
        data = tomli_w.dumps({"format": 1, "targets": targets}).encode()
        if actor is None:
            write_atomic(v.root / FILE, data, mode=0o600)
        else:
            actor.commit("backup.target", {FILE: data})
