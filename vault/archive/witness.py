"""Witnesses of the history: the client's remembered checkpoint, the offline anchor line, backups.

Someone who can write the vault directory can cut the history's tail and re-sign a checkpoint;
they cannot rewrite what others remember. Each client keeps the last checkpoint it verified
(``count`` and ``head``; the replayed state beside it, in ``statestore``, so the next command
replays only newer entries) in its state directory and refuses a history that does not extend it, as a checksum-database client
does. ``vault audit anchor`` prints a line to keep offline beside the fingerprint; ``vault check
--anchor LINE`` verifies the vault extends it. Backups record the checkpoint at the target.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault.archive import statestore
from vault.errors import InputError, IntegrityError
from vault.store import make_dir, unconfined, write_atomic
from vault.i18n import Message, N_
from vault.store import jsontext
from vault.store import read_regular
from vault.store.layout import AUDIT_LOG

if TYPE_CHECKING:
    from vault.archive.handle import Vault

ANCHOR_PREFIX = "vault-anchor-1"

# The shape of a replay state (``authority``): a cached state of another version is replayed afresh.
STATE_VERSION = 4
#: The shape of the state a migration's entry carries (``vault migrate``), fixed: the signed first
#: entries of migrated vaults carry it; the replay takes it up as a state of ``STATE_VERSION``.
MIGRATED_STATE = 3


def state_dir(v: Vault) -> Path:
    base = os.environ.get("VAULT_STATE_DIR")
    if not base:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = str(Path(xdg) / "vault")
    # Per vault and per directory: a copy restored elsewhere from a backup is legitimately older
    # and is its own client state; the directory this client uses cannot go back unnoticed.
    where = hashlib.sha256(str(Path(v.root).resolve()).encode()).hexdigest()[:16]
    return Path(base) / v.config["id"] / where


def _path(v: Vault) -> Path:
    return state_dir(v) / "checkpoint.json"


def remembered(v: Vault) -> tuple[int, str] | None:
    """(count, head) this client last verified, or None."""
    try:
        d = jsontext.loads(_path(v).read_bytes())
        return int(d["count"]), str(d["head"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _store(v: Vault) -> statestore.Store:
    st = getattr(v, "_state_store", None)
    if st is None:
        with unconfined():  # the client's state is outside the vault by design
            st = v._state_store = statestore.Store(state_dir(v) / "state.sqlite")
    return st


def load(v: Vault) -> dict[str, Any] | None:
    """The cached replay state at (or after) the remembered checkpoint (None: replay from genesis).

    Its maps that grow with the vault (``statestore.BIG``) are read lazily, a key at a time."""
    try:
        st = _store(v).load()
    except (sqlite3.Error, ValueError, OSError):
        return None
    if st is None or st.get("v") != STATE_VERSION:
        return None
    return st


def save(v: Vault, st: dict[str, Any]) -> None:
    """Remember ``st`` (verified) as this client's checkpoint; never goes backwards."""
    old = remembered(v)
    if old is not None and old[0] > st["count"]:
        return
    d = state_dir(v)
    with unconfined():  # the client's checkpoint is outside the vault by design
        make_dir(d, parents=True)
    try:
        if not _store(v).save(st):
            return
    except (sqlite3.Error, OSError):
        pass  # the count and head below are what matters; the state is only a cache
    data = json.dumps({"count": st["count"], "head": st["head"]}, separators=(",", ":")).encode()
    with unconfined():  # the client's checkpoint is outside the vault by design
        write_atomic(_path(v), data, mode=0o600, sync=False)


def keeps(v: Vault, point: tuple[int, str]) -> bool:
    """Whether this client's state database holds the state at ``point`` (count, head)."""
    try:
        return _store(v).point() == point
    except (sqlite3.Error, OSError):
        return False


def check_extends(v: Vault, point: tuple[int, str], *, who: str = Message(N_("this client"))) -> None:
    """IntegrityError unless the log's entry ``count`` has hash ``head`` (the history extends it)."""
    count, head = point
    if count == 0:
        return
    try:
        lines = read_regular(v.root / "audit" / "log.jsonl", name=AUDIT_LOG).split(b"\n")
    except FileNotFoundError:
        lines = []
    if len(lines) < count or not lines[count - 1] or hashlib.sha256(lines[count - 1]).hexdigest() != head:
        raise IntegrityError(N_("audit/log.jsonl: history cut or rolled back: {who} verified entry {count} with hash {head}…, which the log no longer has"),
                             hint=N_("restore the vault from a backup that extends it"), who=who, count=count, head=head[:16])


def anchor_line(v: Vault, st: dict[str, Any]) -> str:
    return f"{ANCHOR_PREFIX} {v.fingerprint.replace(' ', '')} {st['count']} {st['head']}"


def parse_anchor(v: Vault, line: str) -> tuple[int, str]:
    parts = line.split()
    if len(parts) != 4 or parts[0] != ANCHOR_PREFIX or not parts[2].isdigit() or len(parts[3]) != 64:
        raise InputError(N_("not an anchor line"), hint=N_("pass the line 'vault audit anchor' printed ({ANCHOR_PREFIX} …)"), ANCHOR_PREFIX=ANCHOR_PREFIX)
    if parts[1] != v.fingerprint.replace(" ", ""):
        raise IntegrityError(N_("the anchor is for another vault (fingerprint differs)"))
    return int(parts[2]), parts[3]
