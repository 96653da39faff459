"""``backups.toml``: every target a vault was backed up to, so that a destruction can reach each one."""

from __future__ import annotations

from typing import Any

import tomli_w

from vault.store import records
from vault.errors import FormatError, IntegrityError
from vault.i18n import N_
from vault.store import write_atomic

FILE = "backups.toml"


def _load(v) -> list[dict[str, Any]]:
    path = v.root / FILE
    try:
        data = records.load_toml(path, schema="backups", what=FILE)
    except FileNotFoundError:
        return []
    except FormatError as e:
        raise IntegrityError.from_error(e, hint=N_("restore it from a backup, or fix it by hand")) from None
    return data["targets"]


def known_targets(v) -> list[str]:
    """Every target URL the vault has been backed up to, in the order first used."""
    return [t["url"] for t in _load(v)]


def record_target(v, url: str) -> None:
    """Add ``url`` to ``backups.toml`` (atomically, under the exclusive lock) unless it is there."""
    if url in known_targets(v):
        return
    with v.lock(exclusive=True):
        targets = _load(v)
        if any(t["url"] == url for t in targets):
            return
        targets.append({"url": url, "first_backup": v.clock.stamp()})
        write_atomic(v.root / FILE, tomli_w.dumps({"format": 1, "targets": targets}).encode(), mode=0o600)
