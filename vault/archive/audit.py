"""The audit trail: signed, hash-chained entries with signed checkpoints [R-3.4.1].

Each entry is one JSON line in ``audit/log.jsonl``:
``{"seq", "at", "member", "action", "outcome", "number"?, "ref"?, "prev", "sig"}`` where ``prev`` is
the SHA-256 of the previous line (64 zeros for the first) and ``sig`` is the acting member's
Ed25519 signature over the entry without ``sig``. After every append ``audit/checkpoint.toml`` is
rewritten with the count and the head hash, signed by the same member, so cutting the tail off the
log (or rolling it back) breaks the checkpoint. Entries carry archive numbers and references, never
customer data.
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
from vault.store import records
from vault.crypto import sign
from vault.errors import AuthenticationError, IntegrityError
from vault.archive import members
from vault.store.identity import PublicKey

GENESIS = "0" * 64
DOMAIN = b"vault-audit-v1\n"
OUTCOMES = ("ok", "refused", "failed")


def _dir(v) -> Path:
    return v.root / "audit"


def _entry_bytes(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "sig"}
    return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _tail(path: Path) -> tuple[int, str]:
    """(count, hash of the last line) read from the end of the log, without reading it all."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0, GENESIS
    if size == 0:
        return 0, GENESIS
    with open(path, "rb") as f:
        back = min(size, 1 << 16)
        f.seek(size - back)
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        return json.loads(last)["seq"], hashlib.sha256(last).hexdigest()
    except (ValueError, KeyError):
        raise IntegrityError("audit/log.jsonl: last entry is damaged", hint="run 'vault audit verify'") from None


def record(actor, action: str, *, outcome: str = "ok", number: str | None = None, ref: str | None = None,
           rev: int | None = None) -> dict:
    """Append one entry; see ``record_many`` for the parameters."""
    return record_many(actor, [dict(action=action, outcome=outcome, number=number, ref=ref, rev=rev)])[0]


def record_many(actor, items: list[dict]) -> list[dict]:
    """Append entries for ``actor`` (before the result is shown), with one fsync for all of them.

    :param items: one mapping per entry with ``action`` (a dotted name: ``doc.view``, ...) and
        optionally ``outcome`` (``ok``, ``refused`` — the vault said no — or ``failed``), ``number``
        (the archive or document number), ``ref`` (a request, grant or member reference — never free
        text) and ``rev`` (for a write to a dossier, the manifest revision it produced, which lets
        ``verify`` find manifest writes missing from the log: a tail cut off with its checkpoint).
    :return: the entries as written.
    """
    d = _dir(actor.vault)
    d.mkdir(mode=0o700, exist_ok=True)
    log = d / "log.jsonl"
    # The audit lock is separate from the vault lock so that reads (which append) never wait for a
    # long write, and appends stay totally ordered.
    fd = os.open(actor.vault.layout.path("audit_lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        seq, prev = _tail(log)
        entries, lines = [], []
        for item in items:
            outcome = item.get("outcome") or "ok"
            assert outcome in OUTCOMES
            seq += 1
            entry = {"seq": seq, "at": clock.stamp(), "member": actor.name, "action": item["action"],
                     "outcome": outcome, "prev": prev}
            for k in ("number", "ref", "rev"):
                if item.get(k) is not None and item.get(k) != "":
                    entry[k] = item[k]
            entry["sig"] = base64.b64encode(actor.identity.sign(_entry_bytes(entry))).decode()
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
        cp = actor.sign({"format": 1, "count": seq, "head": prev, "at": entries[-1]["at"]})
        records.write_toml(d / "checkpoint.toml", cp)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return entries


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
    """Outcome of ``verify``: ``problems`` name the entry (by line) where the chain breaks."""

    count: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(v) -> Verification:
    """Check every signature and link, the checkpoint, and that every manifest write is logged."""
    res = Verification()
    mem = members.all_members(v)
    keys = {n: PublicKey.parse(r["key"]).signing for n, r in mem.items()}
    prev, seq, head = GENESIS, 0, GENESIS
    logged_writes: set[tuple[str, int]] = set()
    path = _dir(v) / "log.jsonl"
    lines = path.read_bytes().split(b"\n") if path.exists() else []
    if lines and lines[-1] == b"":
        lines.pop()
    for i, raw in enumerate(lines, 1):
        where = f"audit/log.jsonl line {i}"
        try:
            e = json.loads(raw)
            sig = base64.b64decode(e["sig"], validate=True)
        except (ValueError, KeyError, TypeError):
            res.problems.append(f"{where}: not a valid entry (damaged)")
            return res
        if e.get("seq") != seq + 1:
            res.problems.append(f"{where}: sequence {e.get('seq')} where {seq + 1} was expected (entry inserted, deleted or reordered)")
            return res
        if e.get("prev") != prev:
            res.problems.append(f"{where}: does not link to the entry before it (entry changed, inserted, deleted or reordered)")
            return res
        try:
            sign.verify(keys[e["member"]], _entry_bytes(e), sig)
        except (KeyError, AuthenticationError):
            res.problems.append(f"{where}: bad signature (entry changed)")
            return res
        if "rev" in e:
            logged_writes.add((e["number"].split("/")[0], e["rev"]))
        prev = hashlib.sha256(raw).hexdigest()
        seq = e["seq"]
        head = prev
    res.count = seq
    _check_checkpoint(v, mem, seq, head, res)
    if res.ok:
        _check_manifest_writes(v, logged_writes, res)
    return res


def _check_manifest_writes(v, logged: set[tuple[str, int]], res: Verification) -> None:
    """Every dossier's current revision must have been logged: catches a log rolled back as a whole."""
    import tomllib

    for p in sorted((v.root / "dossiers").glob("*/manifest.toml")):
        try:
            m = tomllib.loads(p.read_text())
            key = (m["number"], m["revision"])
        except (tomllib.TOMLDecodeError, KeyError, UnicodeDecodeError):
            continue  # a damaged manifest is vault check's to report
        if key not in logged:
            res.problems.append(f"audit/log.jsonl: no entry for revision {key[1]} of dossier {key[0]} "
                                "(entries missing: tail cut off or log rolled back)")


def _check_checkpoint(v, mem: dict, count: int, head: str, res: Verification) -> None:
    cp_path = _dir(v) / "checkpoint.toml"
    if not cp_path.exists():
        if count:
            res.problems.append("audit/checkpoint.toml: missing")
        return
    try:
        cp = records.load_toml(cp_path, what="audit/checkpoint.toml")
        members.verify_by_member(v, cp, what="audit/checkpoint.toml", members=mem)
    except IntegrityError as e:
        res.problems.append(str(e))
        return
    if cp.get("count") != count or cp.get("head") != head:
        res.problems.append(f"audit/log.jsonl: ends at entry {count} but the signed checkpoint says {cp.get('count')} "
                            "(tail cut off or log rolled back)")
