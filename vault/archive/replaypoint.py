"""A checkpoint of ``vault check``'s replay of the history, kept in this client's check cache.

A replay from the genesis record checks every link, signature and authority of the history. What
it ends with — the state, every hash each record path ever had, every line's hash — follows from
the log's bytes alone (the records it reads on the way are named by hash in those bytes, and
``check`` verifies every record again). So a check keeps it (``checkcache``, outside the vault)
with the SHA-256 of exactly the bytes it replayed, taken as it replayed them. The next check takes
the state from here only when the log's first ``offset`` bytes have that hash — a change to any
earlier entry, a cut, an insertion, a reordering all change it — and replays only the entries that
follow. Anything else (another hash, a shorter log, another vault, another state version or release,
a checkpoint of the wrong shape) is a replay from genesis, which names what changed.

Someone who can write the vault directory therefore gains nothing here; someone who can write this
client's state directory could hide a change, as with the rest of the cache (SECURITY.md).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from vault.archive.authority import Replay, full_replay, genesis_hash, genesis_state
from vault.archive.witness import STATE_VERSION
from vault.errors import IntegrityError
from vault.store import read_regular
from vault.store.layout import AUDIT_LOG

if TYPE_CHECKING:
    from vault.archive.handle import Vault

#: What a checkpoint was replayed by: one of another state shape (``STATE_VERSION``, which a change
#: to what the replay keeps or decides bumps) or of another format of its own replays from genesis.
CODE = f"{STATE_VERSION}/1"


def replay(v: Vault, checkpoint: Any) -> Replay:
    """The whole history replayed (``authority.full_replay``), from ``checkpoint`` when the log's bytes
    up to it are exactly those it was taken of."""
    if checkpoint is not None:
        genesis_state(v)  # (checks the policy vault.toml names, resumed or not)
        try:
            resumed = resume(v, checkpoint)
        except IntegrityError:
            resumed = None  # a newer entry is bad: the replay from genesis names it, trusting nothing kept
        if resumed is not None:
            return resumed
    return full_replay(v)


def take(v: Vault, rep: Replay | None) -> dict[str, Any] | None:
    """A checkpoint of ``rep`` (a full replay, or one resumed from a checkpoint), or None when there
    is nothing to keep: no replay, or entries that count for nothing (they are named afresh)."""
    if rep is None or rep.digest is None or rep.seen is None or rep.lines is None or rep.offset is None \
            or rep.state["problems"] or not rep.state["count"]:
        return None
    files = rep.state["files"]
    # (most paths had one hash, the one ``files`` names now: only the others are kept)
    seen = {p: hs for p, hs in rep.seen.items() if len(hs) != 1 or hs != _only(files.get(p))}
    return {"code": CODE, "genesis": genesis_hash(v.config), "offset": rep.offset, "prefix": rep.digest.hexdigest(),
            "state": rep.state, "seen": seen, "lines": rep.lines}


def _only(f: Any) -> dict[str, int] | None:
    """The ``seen`` entry of a path that only ever had the hash ``files`` names now."""
    return {f[0]: f[1]} if f is not None and f[0] is not None else None


def resume(v: Vault, cp: Any) -> Replay | None:
    """The replay of the whole log, from ``cp`` when the log's bytes up to it hash to its prefix
    (the entries after it checked here), else None. IntegrityError: a newer entry is bad."""
    try:
        data = read_regular(v.root / "audit" / "log.jsonl", name=AUDIT_LOG)
    except OSError:
        return None
    try:
        off = cp["offset"]
        if cp.get("code") != CODE or cp.get("genesis") != genesis_hash(v.config) or type(off) is not int \
                or not 0 < off <= len(data) or data[off - 1] != 0x0A:
            return None
        digest = hashlib.sha256(memoryview(data)[:off])
        if digest.hexdigest() != cp["prefix"]:
            return None  # an earlier entry changed (or the log was cut and grown again)
        st, seen, lines = cp["state"], cp["seen"], cp["lines"]
        if not (isinstance(st, dict) and st.get("v") == STATE_VERSION and st.get("offset") == off
                and st.get("problems") == [] and isinstance(seen, dict) and isinstance(lines, list)
                and lines and len(lines) == st.get("count") and lines[-1] == st.get("head")
                and isinstance(st.get("members"), dict) and isinstance(st.get("files"), dict)):
            return None
        every: dict[str, dict[str, int]] = {p: {f[0]: f[1]} for p, f in st["files"].items() if f[0] is not None}
        every.update(seen)
    except (KeyError, TypeError, AttributeError, IndexError):
        return None  # not a checkpoint's shape: never believed
    rep = Replay(v, st)
    rep.seen = every
    rep.lines, rep.offset, rep.digest = list(lines), off, digest
    rest = data[off:].split(b"\n")
    if rest[-1] == b"":
        rest.pop()
    rep.apply(rest)  # every entry after the checkpoint, as a replay from genesis reads it
    return rep
