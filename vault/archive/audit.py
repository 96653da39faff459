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
import contextlib
import errno
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from vault import clock
from vault.archive import authority, keyfiles, replaypoint, witness
from vault.archive.authority import DOMAIN, entry_bytes, genesis_hash  # noqa: F401 (DOMAIN: what an agent may sign)
from vault.errors import FormatError, IntegrityError, VaultError
from vault.store import ids, make_dir, records, remove, replace, staging, sweep_dir, write_atomic
from vault.store.locking import close_lock, open_lock
from vault.store.syncing import sync_dirs, sync_files
from vault.i18n import Message, N_
from vault.store.appending import append_whole
from vault.store.identity import signing_key
from vault.store import jsontext
from vault.store import open_regular, read_regular
from vault.store.layout import AUDIT_LOG

if TYPE_CHECKING:
    from vault.archive.handle import Actor, Vault

OUTCOMES = ("ok", "refused", "failed")


def _dir(v: Vault) -> Path:
    return v.root / "audit"


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _tail(v: Vault, path: Path) -> tuple[int, str]:
    """(count, hash of the last line) read from the end of the log, without reading it all."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    if size == 0:
        return 0, genesis_hash(v.config)
    with open_regular(path, name=AUDIT_LOG) as f:
        # An entry that rewrites the search index names every shard (over 64 KiB): read further back
        # until the last line is whole.
        back = min(size, 1 << 16)
        while True:
            f.seek(size - back)
            tail = f.read().rstrip(b"\n")
            if b"\n" in tail or back == size:
                break
            back = min(size, back * 4)
        last = tail.rsplit(b"\n", 1)[-1]
    try:
        return parse_line(last, where="audit/log.jsonl")["seq"], hashlib.sha256(last).hexdigest()
    except FormatError:
        raise IntegrityError(N_("audit/log.jsonl: last entry is damaged"), hint=N_("run 'vault audit verify'")) from None


def _append(log: Path, data: bytes) -> None:
    """Append ``data`` whole or not at all (``append_whole``: a half line would break the chain for
    every later command), the cut synced too."""
    try:
        append_whole(log, data, step="append", sync_cut=True)
    except OSError as e:  # O_NOFOLLOW: a log replaced by a symbolic link is not followed to write elsewhere
        if e.errno == errno.ELOOP:
            raise IntegrityError(N_("audit/log.jsonl is a symbolic link (tampered with)"), hint=N_("run 'vault check'")) from None
        raise


def record(actor: Actor, action: str, *, outcome: str = "ok", number: str | None = None, ref: str | None = None,
           rev: int | None = None, obj: str | None = None) -> dict:
    """Append one entry that writes nothing (but the key files the command staged, if it succeeded);
    see ``record_many`` for the parameters."""
    if outcome == "ok" and keyfiles.staged(actor.vault):
        return commit(actor, action, {}, number=number, ref=ref, rev=rev, obj=obj)
    return record_many(actor, [dict(action=action, outcome=outcome, number=number, ref=ref, rev=rev, obj=obj)])[0]


def record_many(actor: Actor, items: list[dict], *, _advance: bool = True) -> list[dict]:
    """Append entries for ``actor`` (before the result is shown), with one fsync for all of them.

    :param items: one mapping per entry with ``action`` (a dotted name with a row in
        ``vault.archive.trust``) and optionally ``outcome``, ``number``, ``ref``, ``rev``, ``obj``,
        ``records`` and ``subject`` (see the module docstring).
    :return: the entries as written.
    """
    d = _dir(actor.vault)
    make_dir(d)
    if d.is_symlink():
        raise IntegrityError(N_("audit/ is a symbolic link (tampered with)"), hint=N_("run 'vault check'"))
    log = d / "log.jsonl"
    # The audit lock is separate from the vault lock so that reads (which append) never wait for a
    # long write, and appends stay totally ordered.
    with lock(actor.vault, exclusive=True):
        # What an appender stopped mid-checkpoint left (the vault lock's sweep never looks here: a
        # reader appends under this lock alone, and its temporary is its own until it renames it).
        sweep_dir(d)
        seq, prev = _tail(actor.vault, log)
        entries, lines = [], []
        for item in items:
            outcome = item.get("outcome") or "ok"
            assert outcome in OUTCOMES
            seq += 1
            entry = {"seq": seq, "at": actor.clock.stamp(), "member": actor.name, "action": item["action"],
                     "outcome": outcome, "prev": prev}
            for k in ("number", "ref", "rev", "obj", "records", "subject"):
                if item.get(k) is not None and item.get(k) != "":
                    entry[k] = item[k]
            if "number" in entry and not ids.ARCHIVE_NUMBER.match(entry["number"]) \
                    and not ids.DOCUMENT_NUMBER.match(entry["number"]):
                # What a member typed where a number belongs (refused before it was checked) is free
                # text, which the trail never carries: it could be a customer's name.
                entry["number"] = "(invalid)"
            entry["sig"] = base64.b64encode(actor.identity.sign(entry_bytes(entry))).decode()
            line = _line(entry)
            prev = hashlib.sha256(line).hexdigest()
            entries.append(entry)
            lines.append(line + b"\n")
        _append(log, b"".join(lines))
        cp = actor.sign({"format": 1, "count": seq, "head": prev, "at": entries[-1]["at"]})
        records.write_toml(d / "checkpoint.toml", cp)
    if _advance:
        _witness(actor.vault)
    return entries


def _witness(v: Vault) -> None:
    """Verify what was just appended and remember it as this client's checkpoint."""
    authority.state(v)


def commit(actor: Actor, action: str, files: dict[str, bytes | None], *, number: str | None = None,
           ref: str | None = None, rev: int | None = None, obj: str | None = None,
           subject: dict | None = None) -> dict:
    """Write ``files`` (vault path → bytes, or None to delete) with one history entry as commit point.

    1. each file is written as ``<path>.pending`` (atomic, durable); 2. one entry naming all their
    hashes is appended and fsynced — the commit point; 3. each pending file is renamed over its path.
    The caller holds the exclusive vault lock; an interruption is finished or dropped by
    ``recovery.recover`` under the next exclusive lock, so it is never mistaken for tampering.
    """
    return commit_many(actor, [dict(action=action, files=files, number=number, ref=ref, rev=rev, obj=obj,
                                    subject=subject)])[0]


#: Whether a commit asks the history's judgement of its entries before it puts their files in place
#: (always, in use; the attack tests turn it off to forge what a member beyond their role could
#: write with the library and their own key).
JUDGE = True


def commit_many(actor: Actor, items: list[dict], *, synced: list[Path] | None = None) -> list[dict]:
    """``commit`` for several changes at once (a bulk add: one per dossier), each its own entry.

    The same three steps, each done once for the whole batch: every pending file is written, then
    all of them — and ``synced``, files the caller wrote unsynced that the entries rely on (document
    ciphertext, key tables) — are made durable with one ``sync_files``; the entries are appended
    with one write and one fsync (each entry is still whole or absent: recovery treats a pending file
    whose entry did not land as never committed); then every pending file is renamed and the
    directories synced once.
    """
    v = actor.vault
    # Key files the command staged are committed by the same entries: each item's own, the rest by
    # the first entry (so they are in place whenever any of the batch is).
    rest = keyfiles.take(v)
    if rest and items:
        items = [{**items[0], "files": {**rest, **items[0]["files"]}}, *items[1:]]
    # Named before the first is staged: the next writer finds what an interruption leaves from here.
    staging.note(v.root, [rel for item in items for rel in item["files"]])
    staged: list[Path] = []
    entries_in: list[dict] = []
    renames: list[tuple[tuple[str, str | None], int]] = []  # ((path, hash or None), the item it is of)
    for item in items:
        hashes: dict[str, str | None] = {}
        for rel, data in item["files"].items():
            if data is None:
                hashes[rel] = None
            else:
                mode = 0o600 if rel.endswith(".age") else 0o644
                write_atomic(v.root / (rel + staging.PENDING), data, mode=mode, sync=False)
                staged.append(v.root / (rel + staging.PENDING))
                hashes[rel] = hashlib.sha256(data).hexdigest()
            renames.append(((rel, hashes[rel]), len(entries_in)))
        entries_in.append(dict(action=item["action"], number=item.get("number"), ref=item.get("ref"),
                               rev=item.get("rev"), obj=item.get("obj"), records=hashes, subject=item.get("subject")))
    if staged or synced:
        sync_files([*(synced or []), *staged])
    written = record_many(actor, entries_in, _advance=False)
    void = authority.counted_for_nothing(v, [e["seq"] for e in written]) if JUDGE else {}
    dropped = {i for i, e in enumerate(written) if e["seq"] in void}
    dirs = set()
    for (rel, h), i in renames:
        p = v.root / rel
        if i in dropped:
            remove(v.root / (rel + staging.PENDING), missing_ok=True)
            continue
        if h is None:
            if remove(p, missing_ok=True):  # (already gone: a key file a restore never had)
                dirs.add(p.parent)
        else:
            replace(v.root / (rel + staging.PENDING), p)
            dirs.add(p.parent)
    sync_dirs(dirs)
    staging.clear(v.root)
    _witness(v)
    if void:
        seq, why = min(void.items())
        raise IntegrityError(N_("the history counts this {action} for nothing (audit/log.jsonl line {seq}): {why}"),
                             hint=N_("nothing it wrote was put in place; 'vault check' names the entry"),
                             action=written[seq - written[0]["seq"]]["action"], seq=seq, why=why)
    return written


@contextlib.contextmanager
def lock(v: Vault, *, exclusive: bool, wait: float = 30.0) -> Iterator[None]:
    """The audit trail's own lock: appenders hold it exclusive; ``verify`` and backups shared, so
    that they read the log and its checkpoint as a pair (no false alarm while others append)."""
    d = _dir(v)
    if not exclusive and not d.is_dir():
        yield
        return
    fd = open_lock(d / ".lock", exclusive=exclusive, wait=wait, what=Message(N_("the audit trail")))
    try:
        yield
    finally:
        close_lock(fd)


def entries(v: Vault) -> Iterator[dict[str, Any]]:
    """Every entry, in order (unverified; use ``verify`` first)."""
    with lock(v, exclusive=False):  # never a line half appended
        try:
            data = read_regular(_dir(v) / "log.jsonl", name=AUDIT_LOG)
        except FileNotFoundError:
            return
    for i, raw in enumerate(data.splitlines(), 1):
        yield parse_line(raw, where=Message(N_("audit/log.jsonl line {i}"), i=i))


@dataclass
class Verification:
    """Outcome of ``verify``: ``problems`` name the entry where the chain breaks or what counts for nothing."""

    count: int = 0
    head: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    replay: Any = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(v: Vault, *, anchor: tuple[int, str] | None = None, resume: dict[str, Any] | None = None) -> Verification:
    """Replay the whole history from genesis: every link and signature, every entry's authority,
    the signed checkpoint, this client's remembered checkpoint and, if given, an offline anchor.
    ``resume``: a checkpoint of an earlier such replay (``replaypoint``), used only if the log's
    bytes up to it are exactly those it was taken of."""
    res = Verification()
    if (_dir(v) / "log.jsonl").is_symlink():
        res.problems.append(N_("audit/log.jsonl: is a symbolic link (tampered with)"))
        return res
    # Under the audit lock: an append between reading the log and its checkpoint is no tampering.
    with lock(v, exclusive=False):
        try:
            rep = replaypoint.replay(v, resume)
        except VaultError as e:
            res.problems.append(e.message)
            return res
        cp = _read_checkpoint(v, res)
    res.replay = rep
    st = rep.state
    res.count, res.head = st["count"], st["head"]
    res.problems.extend(st["problems"])
    res.notes.extend(st.get("clock", []))
    latest = st.get("latest") or ""
    if latest > v.clock.stamp() and clock.parse_stamp(latest) > v.clock.now() + authority.CLOCK_SLACK:
        res.notes.append(Message(N_("audit/log.jsonl: the latest entry is dated {at}, after this machine's clock ({now}): "
                                    "a signer's clock was ahead, or this machine's is behind"),
                                 at=latest, now=v.clock.stamp()))
    extends = True
    mine = witness.remembered(v)
    for who, point in ((Message(N_("this client")), mine), (Message(N_("the anchor")), anchor)):
        if point is not None:
            try:
                witness.check_extends(v, point, who=who)
            except VaultError as e:
                res.problems.append(e.message)
                extends = extends and who != "this client"
    _check_checkpoint(v, cp, st, res)
    if extends and getattr(v, "_replay", None) is None:
        v._replay = rep  # the rest of this command reads the state just verified
        if mine != (st["count"], st["head"]) or not witness.keeps(v, mine):
            witness.save(v, st)  # (not when this client's remembered state is already this one)
    return res


def _head_at(v: Vault, count: int) -> str | None:
    """The hash of entry ``count`` of the log as it is now."""
    try:
        lines = read_regular(_dir(v) / "log.jsonl", name=AUDIT_LOG).split(b"\n")
    except FileNotFoundError:
        return None
    return hashlib.sha256(lines[count - 1]).hexdigest() if count <= len(lines) else None


def checkpoint_lags(v: Vault) -> bool:
    """Whether the signed checkpoint names an earlier entry than the log's last (an interrupted append)."""
    try:
        cp = records.load_toml(_dir(v) / "checkpoint.toml", schema="checkpoint", what="audit/checkpoint.toml")
    except (FileNotFoundError, VaultError):
        return False
    return cp.get("count", 0) < _tail(v, _dir(v) / "log.jsonl")[0]


def parse_line(raw: bytes, *, where: str) -> dict[str, Any]:
    """One line of the log as an entry of the right shape (schemas/audit-entry); FormatError names it."""
    try:
        e = jsontext.loads(raw)
    except ValueError:
        raise FormatError(N_("{where}: not a valid entry (damaged or foreign)"), where=where) from None
    records.validate(e, "audit-entry", what=where)
    return e


_NO_CHECKPOINT: dict[str, Any] = {}


def _read_checkpoint(v: Vault, res: Verification) -> dict[str, Any] | None:
    """The checkpoint as read (None when damaged: the problem is noted), or _NO_CHECKPOINT."""
    try:
        return records.load_toml(_dir(v) / "checkpoint.toml", schema="checkpoint", what="audit/checkpoint.toml")
    except FileNotFoundError:
        return _NO_CHECKPOINT
    except VaultError as e:
        res.problems.append(e.message)
        return None


def _check_checkpoint(v: Vault, cp: dict[str, Any] | None, st: dict, res: Verification) -> None:
    if cp is None:
        return
    if cp is _NO_CHECKPOINT:
        if st["count"]:
            res.problems.append(N_("audit/checkpoint.toml: missing"))
        return
    if not (_dir(v) / "log.jsonl").exists():
        res.problems.append(Message(N_("audit/log.jsonl: missing (the signed checkpoint says {count} entries)"),
                                    count=cp.get("count")))
    try:
        by = st["members"].get(cp.get("signature", {}).get("by"))
        if by is None:
            raise IntegrityError(N_("audit/checkpoint.toml: signed by an unknown member"))
        records.verify_record(cp, signing_key(by["key"]), what="audit/checkpoint.toml")
    except VaultError as e:
        res.problems.append(e.message)
        return
    if isinstance(cp.get("count"), int) and 0 < cp["count"] < st["count"] \
            and cp.get("head") == _head_at(v, cp["count"]):
        # Appended, then stopped before the checkpoint was rewritten: the checkpoint is a true
        # earlier point of this same chain (a cut tail makes the log shorter than the checkpoint).
        res.notes.append(Message(N_("audit/checkpoint.toml: signed at entry {signed}, the history goes on to "
                                    "entry {count}: an append was interrupted before its checkpoint (the next "
                                    "write or 'vault repair' rewrites it)"), signed=cp["count"], count=st["count"]))
        return
    if cp.get("count") != st["count"] or cp.get("head") != st["head"]:
        res.problems.append(Message(N_("audit/log.jsonl: ends at entry {count} but the signed checkpoint audit/checkpoint.toml says {checkpoint} (tail cut off or log rolled back, or the checkpoint put back)"), count=st['count'], checkpoint=cp.get('count')))
