"""``backups.toml``: every target a vault was backed up to, so that a destruction can reach each one."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w

from vault import clock
from vault.errors import IntegrityError
from vault.store import write_atomic

FILE = "backups.toml"


def _load(v) -> list[dict[str, Any]]:
    path = v.root / FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise IntegrityError(f"{FILE}: does not parse", hint="restore it from a backup, or fix it by hand") from None
    targets = data.get("targets", [])
    if data.get("format") != 1 or not isinstance(targets, list) or not all(
            isinstance(t, dict) and isinstance(t.get("url"), str) for t in targets):
        raise IntegrityError(f"{FILE}: unexpected content")
    return targets


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
        targets.append({"url": url, "first_backup": clock.stamp()})
        write_atomic(v.root / FILE, tomli_w.dumps({"format": 1, "targets": targets}).encode(), mode=0o600)
