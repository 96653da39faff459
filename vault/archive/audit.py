"""The audit trail: the vault's one ordered, signed, hash-chained history, and its commit protocol.

Each entry is one JSON line in ``audit/log.jsonl``: ``seq``, ``at``, ``member``, ``action``,
``outcome``, optional ``number``, ``ref``, ``rev``, ``obj`` (the permanent id acted on),
``records`` (vault path → SHA-256 of the bytes the action wrote, or null for a file it deleted) and
``subject`` (facts the replay needs, e.g. a new member's key), then ``prev`` (SHA-256 of the
previous line; of the genesis record for entry 1) and ``sig`` (the member's Ed25519 signature).
``commit`` makes an entry the commit point of a change: records are staged as ``.pending``, the
entry is appended, then they are renamed into place. Entries never carry customer data.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vault import clock
from vault.archive.authority import DOMAIN, entry_bytes  # noqa: F401 (DOMAIN: what an agent may sign)
from vault.errors import IntegrityError, VaultError
from vault.store import fsync_dir, records, write_atomic

OUTCOMES = ("ok", "refused", "failed")
PENDING = ".pending"


def _dir(v) -> Path:
    return v.root / "audit"


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _tail(v, path: Path) -> tuple[int, str]:
    """(count, hash of the last line) read from the end of the log, without reading it all."""
    from vault.archive.authority import genesis_hash

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    if size == 0:
        return 0, genesis_hash(v.config)
    with open(path, "rb") as f:
        back = min(size, 1 << 16)
        f.seek(size - back)
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        return json.loads(last)["seq"], hashlib.sha256(last).hexdigest()
    except (ValueError, KeyError):
        raise IntegrityError("audit/log.jsonl: last entry is damaged", hint="run 'vault audit verify'") from None


def record(actor, action: str, *, outcome: str = "ok", number: str | None = None, ref: str | None = None,
           rev: int | None = None, obj: str | None = None) -> dict:
    """Append one entry that writes nothing; see ``record_many`` for the parameters."""
    return record_many(actor, [dict(action=action, outcome=outcome, number=number, ref=ref, rev=rev, obj=obj)])[0]


def record_many(actor, items: list[dict], *, _advance: bool = True) -> list[dict]:
    """Append entries for ``actor`` (before the result is shown), with one fsync for all of them.

    :param items: one mapping per entry with ``action`` (a dotted name with a row in
        ``vault.archive.trust``) and optionally ``outcome``, ``number``, ``ref``, ``rev``, ``obj``,
        ``records`` and ``subject`` (see the module docstring).
    :return: the entries as written.
    """
    d = _dir(actor.vault)
    d.mkdir(mode=0o700, exist_ok=True)
    log = d / "log.jsonl"
    # The audit lock is separate from the vault lock so that reads (which append) never wait for a
    # long write, and appends stay totally ordered.
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        seq, prev = _tail(actor.vault, log)
        entries, lines = [], []
        for item in items:
            outcome = item.get("outcome") or "ok"
            assert outcome in OUTCOMES
            seq += 1
            entry = {"seq": seq, "at": clock.stamp(), "member": actor.name, "action": item["action"],
                     "outcome": outcome, "prev": prev}
            for k in ("number", "ref", "rev", "obj", "records", "subject"):
                if item.get(k) is not None and item.get(k) != "":
                    entry[k] = item[k]
            entry["sig"] = base64.b64encode(actor.identity.sign(entry_bytes(entry))).decode()
            line = _line(entry)
            prev = hashlib.sha256(line).hexdigest()
            entries.append(entry)
            lines.append(line + b"\n")
        wfd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(wfd, b"".join(lines))
            os.fsync(wfd)
        finally:
            os.close(wfd)
        cp = actor.sign({"format": 2, "count": seq, "head": prev, "at": entries[-1]["at"]})
        records.write_toml(d / "checkpoint.toml", cp)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    if _advance:
        _witness(actor.vault)
    return entries


def _witness(v) -> None:
    """Verify what was just appended and remember it as this client's checkpoint."""
    from vault.archive import authority

    authority.state(v)


def commit(actor, action: str, files: dict[str, bytes | None], *, number: str | None = None,
           ref: str | None = None, rev: int | None = None, obj: str | None = None,
           subject: dict | None = None) -> dict:
    """Write ``files`` (vault path → bytes, or None to delete) with one history entry as commit point.

    1. each file is written as ``<path>.pending`` (atomic, fsynced); 2. one entry naming all their
    hashes is appended and fsynced — the commit point; 3. each pending file is renamed over its path.
    The caller holds the exclusive vault lock; an interruption is finished or dropped by
    ``authority.recover`` under the next exclusive lock, so it is never mistaken for tampering.
    """
    v = actor.vault
    hashes: dict[str, str | None] = {}
    for rel, data in files.items():
        if data is None:
            hashes[rel] = None
            continue
        mode = 0o600 if rel.endswith(".age") else 0o644
        write_atomic(v.root / (rel + PENDING), data, mode=mode)
        hashes[rel] = hashlib.sha256(data).hexdigest()
    entry = record_many(actor, [dict(action=action, number=number, ref=ref, rev=rev, obj=obj, records=hashes,
                                     subject=subject)], _advance=False)[0]
    dirs = set()
    for rel, h in hashes.items():
        p = v.root / rel
        if h is None:
            if p.exists():
                p.unlink()
        else:
            os.replace(v.root / (rel + PENDING), p)
        dirs.add(p.parent)
    for d in dirs:
        fsync_dir(d)
    _witness(v)
    return entry


def entries(v) -> Iterator[dict[str, Any]]:
    """Every entry, in order (unverified; use ``verify`` first)."""
    try:
        f = open(_dir(v) / "log.jsonl", "rb")
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            yield json.loads(raw)


@dataclass
class Verification:
    """Outcome of ``verify``: ``problems`` name the entry where the chain breaks or what counts for nothing."""

    count: int = 0
    head: str = ""
    problems: list[str] = field(default_factory=list)
    replay: Any = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(v, *, anchor: tuple[int, str] | None = None) -> Verification:
    """Replay the whole history from genesis: every link and signature, every entry's authority,
    the signed checkpoint, this client's remembered checkpoint and, if given, an offline anchor."""
    from vault.archive import authority, witness

    res = Verification()
    try:
        rep = authority.full_replay(v)
    except VaultError as e:
        res.problems.append(str(e))
        return res
    res.replay = rep
    st = rep.state
    res.count, res.head = st["count"], st["head"]
    res.problems.extend(st["problems"])
    extends = True
    for who, point in (("this client", witness.remembered(v)), ("the anchor", anchor)):
        if point is not None:
            try:
                witness.check_extends(v, point, who=who)
            except VaultError as e:
                res.problems.append(str(e))
                extends = extends and who != "this client"
    _check_checkpoint(v, st, res)
    if extends and getattr(v, "_replay", None) is None:
        v._replay = rep  # the rest of this command reads the state just verified
        witness.save(v, st)
    return res


def _check_checkpoint(v, st: dict, res: Verification) -> None:
    from vault.store.identity import PublicKey

    cp_path = _dir(v) / "checkpoint.toml"
    if not cp_path.exists():
        if st["count"]:
            res.problems.append("audit/checkpoint.toml: missing")
        return
    try:
        cp = records.load_toml(cp_path, what="audit/checkpoint.toml")
        by = st["members"].get(cp.get("signature", {}).get("by"))
        if by is None:
            raise IntegrityError("audit/checkpoint.toml: signed by an unknown member")
        records.verify_record(cp, PublicKey.parse(by["key"]).signing, what="audit/checkpoint.toml")
    except VaultError as e:
        res.problems.append(str(e))
        return
    if cp.get("count") != st["count"] or cp.get("head") != st["head"]:
        res.problems.append(f"audit/log.jsonl: ends at entry {st['count']} but the signed checkpoint says "
                            f"{cp.get('count')} (tail cut off or log rolled back)")
