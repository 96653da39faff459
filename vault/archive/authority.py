"""Authority at a position in history: replay the audit log and say what counts.

The history (``audit/log.jsonl``) is replayed from the genesis record forward: chain, sequence and
signature of each entry, then ``trust`` decides whether the entry counts — its signer active at
that position, allowed the action by the policy then in force (or a supervisor, for the roots),
writing only records its action may write, consistent with what came before. The state in force —
members, policy, dossiers, requests, grants, holds, destructions, and the newest hash the history
names for every record file — comes from the entries alone; files are evidence, checked against it.
Every read that matters asks this module (a record file through ``committed``); no procedure module
checks roles by itself.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import glob
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault import clock
from vault.archive import labels, trust, witness
from vault.archive.witness import MIGRATED_STATE, STATE_VERSION
from vault.archive.policy import Policy
from vault.crypto import sign
from vault.errors import AuthenticationError, InputError, IntegrityError
from vault.i18n import Message, N_
from vault.store import jsontext, records, staging, tomlread
from vault.store.identity import signing_key as _decode_signing_key
from vault.store import open_regular, read_regular
from vault.store.layout import AUDIT_LOG

if TYPE_CHECKING:
    from vault.archive.handle import Vault

DOMAIN = b"vault-audit-v2\n"


def genesis_hash(config: dict[str, Any]) -> str:
    """What entry 1's ``prev`` is: the genesis record's canonical hash (binds the log to this vault)."""
    return hashlib.sha256(records.canonical(config)).hexdigest()


def entry_bytes(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "sig"}
    return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: How far an entry's time may fall behind the latest before it, or the latest lie ahead of the
#: checking machine's clock, before ``vault check`` notes it (clocks differ; there is no trusted one).
CLOCK_SLACK = dt.timedelta(hours=1)


def genesis_state(v: Vault) -> dict[str, Any]:
    """The state before entry 1: the founder, the genesis records and the initial policy."""
    cfg = v.config
    files = {p: [h, 0, cfg["founder"]["name"], ""] for p, h in cfg.get("genesis_records", {}).items()}
    st: dict[str, Any] = {
        "v": STATE_VERSION, "count": 0, "head": genesis_hash(cfg), "files": files,
        "members": {cfg["founder"]["name"]: {"key": cfg["founder"]["key"], "roles": ["supervisor"],
                                             "dept": "archive", "status": "active", "since": 0, "removed": None}},

        "policy": None, "policy_version": 1, "dossiers": {}, "numbers": {}, "requests": {}, "grants": {},
        "holds": {}, "destructions": {}, "intake": {}, "loans": {}, "problems": [], "latest": "", "before": "",
        "clock": [],
    }
    if cfg["founder"].get("display_name"):
        st["members"][cfg["founder"]["name"]]["display"] = cfg["founder"]["display_name"]
    if "migrated_by" in cfg:  # a migrated vault: entry 1 is the migration, signed by this supervisor
        mb = cfg["migrated_by"]
        st["members"][mb["name"]] = {"key": mb["key"], "roles": ["supervisor"], "dept": "archive", "status": "active",
                                     "since": 0, "removed": None}
    if files:
        data = _read_bound(v, "policy/1.toml", files)
        if sha256(records.canonical(data)) != cfg["policy_sha256"]:
            raise IntegrityError(N_("policy/1.toml: not the policy vault.toml names"))
        st["policy"] = data
    return st


def _read_bound(v: Vault, rel: str, files: dict) -> dict[str, Any]:
    try:
        raw = read_regular(v.root / rel, name=rel)
    except FileNotFoundError:
        raise IntegrityError(N_("{rel}: missing (the history names it)"), rel=rel) from None
    if sha256(raw) != files.get(rel, [None])[0]:
        raise IntegrityError(N_("{rel}: does not match the history (changed, or an older version put back)"), rel=rel)
    return tomlread.loads(raw.decode())


class Replay:
    """The history replayed up to ``state['count']``; ``advance`` reads and checks newer entries."""

    def __init__(self, v: Vault, state: dict[str, Any], *, every_signature: bool = True) -> None:
        self.v = v
        self.state = state
        self.offset: int | None = None  # byte offset after entry ``count``, once known
        self.seen: dict[str, dict[str, int]] | None = None  # every hash per path (full replays only)
        self.lines: list[str] | None = None  # every line's hash (full replays only)
        # SHA-256 of the log's bytes up to ``offset`` (full replays only): what ``replaypoint`` keys
        # a checkpoint of this replay by, taken from the very bytes replayed.
        self.digest: Any = None
        # A command needs the state, which entries that change nothing (reads, refusals) never
        # touch: it checks their link and signer but not their signature, which is most of the cost
        # of a first replay. ``vault check`` and ``vault audit verify`` check every signature.
        self.every_signature = every_signature
        #: Why each entry this replay read counts for nothing, by its sequence number.
        self.void: dict[int, Message | str] = {}

    def advance(self) -> dict[str, Any]:
        path = self.v.root / "audit" / "log.jsonl"
        st = self.state
        if self.offset is None and st["count"] and isinstance(st.get("offset"), int) \
                and isinstance(st.get("last_len"), int):
            self._resume(path)  # a remembered state: check its last entry where it was, read only what follows
        size = 0
        try:
            if self.offset is None:
                data = read_regular(path, name=AUDIT_LOG)
            else:  # most calls find nothing new: one stat instead of opening and reading the log
                size = os.stat(path).st_size
                data = _read_from(path, self.offset) if size > self.offset else b""
        except FileNotFoundError:
            data = b""
        if self.offset is None:
            lines = data.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            n = st["count"]
            if n:
                if len(lines) < n or sha256(lines[n - 1]) != st["head"]:
                    raise IntegrityError(
                        N_("audit/log.jsonl: history cut or rolled back: this client verified entry {n} with hash {head}…, which the log no longer has"), hint=N_("run 'vault check' and restore the vault"), n=n, head=st['head'][:16])
            self.offset = sum(len(x) + 1 for x in lines[:n])
            new = lines[n:]
        else:
            if size < self.offset:
                raise IntegrityError(N_("audit/log.jsonl: history cut while this command ran"))
            new = data.split(b"\n")[:-1]  # complete lines only: an append may be under way
        self.apply(new)
        return st

    def apply(self, lines: list[bytes]) -> None:
        """Check and apply ``lines``, the entries that follow entry ``count`` at ``offset``."""
        st = self.state
        assert self.offset is not None
        for raw in lines:
            self._entry(raw)
            self.offset += len(raw) + 1
            st["last_len"] = len(raw)
            if self.digest is not None:
                self.digest.update(raw + b"\n")
        st["offset"] = self.offset

    def _resume(self, path: Path) -> None:
        """Find entry ``count`` at the byte offset the state remembers, instead of reading the whole
        log: the line ending there must hash to ``head`` (else the history was cut or rewritten)."""
        st = self.state
        end, n = st["offset"], st["last_len"]
        start = end - n - 2  # the newline before the line, or -1 for the first entry
        try:
            with open_regular(path, name=AUDIT_LOG) as f:
                f.seek(max(0, start))
                data = f.read(end - max(0, start))
        except FileNotFoundError:
            data = b""
        line = None
        if data.endswith(b"\n") and (start < 0 or data[:1] == b"\n"):
            line = data[1 if start >= 0 else 0:-1]
        if line is None or len(line) != n or sha256(line) != st["head"]:
            raise IntegrityError(
                N_("audit/log.jsonl: history cut or rolled back: this client verified entry {n} with hash {head}…, which the log no longer has"), hint=N_("run 'vault check' and restore the vault"), n=st["count"], head=st["head"][:16])
        self.offset = end

    def _entry(self, raw: bytes) -> None:
        st = self.state
        where = Message(N_("audit/log.jsonl line {count}"), count=st['count'] + 1)
        try:
            e = jsontext.loads(raw)
            sig = base64.b64decode(e["sig"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(N_("{where}: not a valid entry (damaged)"), where=where) from None
        if e.get("seq") != st["count"] + 1:
            raise IntegrityError(N_("{where}: sequence {seq} (entry inserted, deleted or reordered)"), where=where, seq=e.get('seq'))
        if e.get("prev") != st["head"]:
            if st["count"] == 0:  # entry 1 links to the genesis record
                raise IntegrityError(N_("{where}: does not link to the genesis record vault.toml (one of them changed)"), where=where)
            raise IntegrityError(N_("{where}: does not link to the entry before it (changed, inserted, deleted or reordered)"), where=where)
        signer = st["members"].get(e.get("member"))
        line_hash = sha256(raw)
        try:
            if signer is None:
                raise AuthenticationError(N_("unknown signer"))
            if (self.every_signature or not _changes_nothing(e)) \
                    and _VERIFIED.get(line_hash) != signer["key"]:
                sign.verify(_signing_key(signer["key"]), entry_bytes(e), sig)
                # The same line (message and signature) under the same key verifies the same way:
                # a second replay in this process (``vault check`` after the command's own) skips it.
                if len(_VERIFIED) < _VERIFIED_MAX:
                    _VERIFIED[line_hash] = signer["key"]
        except (AuthenticationError, ValueError):
            raise IntegrityError(N_("{where}: bad signature (entry changed or forged)"), where=where) from None
        why = self._counts(e, signer)
        if why is not None:
            self.void[e["seq"]] = why
            st["problems"].append(Message(N_("{where} ({action} by {member}): counts for nothing: {why}"), where=where, action=e['action'], member=e['member'], why=why))
        self._clock(e, where)
        if self.lines is not None:
            self.lines.append(line_hash)
        st["count"], st["head"] = e["seq"], line_hash

    def _clock(self, e: dict[str, Any], where: Message) -> None:
        """An entry dated more than ``CLOCK_SLACK`` before the entry just before it is noted (its
        signer's clock was behind, or set back — or the one before it was ahead: one entry dated
        years ahead is one note at the entry after it, not one at every entry since); the latest
        time is kept for ``audit.verify``, which notes one after the checking machine's clock."""
        st = self.state
        at, before = e.get("at"), st.get("before", "")
        if not isinstance(at, str) or not clock.STAMP.match(at):
            return
        st["before"] = at
        if at > st.setdefault("latest", ""):  # (the same fixed-width UTC form: compared as text)
            st["latest"] = at
        if before and at < before and clock.parse_stamp(at) < clock.parse_stamp(before) - CLOCK_SLACK:
            st.setdefault("clock", []).append(Message(
                N_("{where} ({action} by {member}): dated {at}, more than an hour before the entry before it ({before}): "
                   "its signer's clock was behind, or that entry's ahead"),
                where=where, action=e["action"], member=e["member"], at=at, before=before))

    def _counts(self, e: dict[str, Any], signer: dict[str, Any]) -> str | None:
        st = self.state
        if e.get("outcome") != "ok":
            return Message(N_("a refusal names no records")) if e.get("records") or e.get("subject") else None
        if e["action"] == "vault.migrate":
            return self._migrate(e, signer)
        row = trust.row(e["action"])
        if row is None:
            return Message(N_("no rule in the trust table for this action"))
        if signer["status"] != "active":
            return Message(N_("{member} was removed at entry {removed}"), member=e['member'], removed=signer['removed'])
        if row.root and trust.ROOT_ROLE not in signer["roles"]:
            return Message(N_("{member} is not a supervisor"), member=e['member'])
        right = row.right(e, st) if callable(row.right) else row.right
        if right is not None and not Policy(st["policy"]).may(signer["roles"], right):
            return Message(N_("{member} ({roles}) may not {right} under policy version {policy_version}"), member=e['member'], roles=', '.join(signer['roles']), right=right, policy_version=st['policy_version'])
        recs = e.get("records") or {}
        if not isinstance(recs, dict):
            return Message(N_("records is not a table"))
        if recs:
            # Ids are escaped: an entry naming object "*" must not widen what it may write.
            ids = {k: glob.escape(str(e.get(k) or "")) or "\0" for k in ("obj", "ref")}
            pats = [w.format(**ids) for w in (*row.writes, *trust.KEY_WRITES.get(e["action"], ()))]
            for p in recs:
                if not any(trust.match(p, pat) for pat in pats):
                    return Message(N_("{action} may not write {p}"), action=e['action'], p=p)
        if row.bind is not None and (why := row.bind(e, st)) is not None:
            return why
        if e["action"] == "policy.update" and (why := self._policy(e)) is not None:
            return why
        self._record_files(e)
        if row.apply is not None:
            row.apply(e, st)
        return None

    def _policy(self, e: dict[str, Any]) -> str | None:
        st = self.state
        n = st["policy_version"] + 1
        rel = f"policy/{n}.toml"
        raw = staging.committed_bytes(self.v.root / rel, e["records"].get(rel))
        if raw is None:
            return Message(N_("{rel} is missing"), rel=rel)
        if sha256(raw) != e["records"][rel] or sha256(raw) != e["records"]["policy.toml"]:
            return Message(N_("{rel} does not match the entry"), rel=rel)
        data = {k: x for k, x in tomlread.loads(raw.decode()).items() if k != "signature"}
        if data.get("rings") != st["policy"]["rings"]:
            return Message(N_("a policy edit cannot change the rings"))
        if "policy.manage" not in data.get("roles", {}).get("supervisor", {}).get("may", []):
            return Message(N_("the supervisor role must keep policy.manage"))
        # The time zone's form only: whether this machine's database knows it must not decide what counts.
        tz = data.get("time_zone")
        if tz is not None and not (isinstance(tz, str) and clock.ZONE_KEY.match(tz) and not tz.startswith("-")):
            return Message(N_("the time zone is not a zone name"))
        try:
            labels.check_policy(data, strict=False)
        except InputError as err:
            return Message(N_("its names are refused ({why})"), why=str(err))
        st["policy"], st["policy_version"] = data, n
        return None

    def _migrate(self, e: dict[str, Any], signer: dict[str, Any]) -> str | None:
        st = self.state
        if e["seq"] != 1 or signer["status"] != "active" or trust.ROOT_ROLE not in signer["roles"]:
            return Message(N_("a migration is entry 1, by the founder or a supervisor the founder added"))
        snap = e.get("subject")
        if not isinstance(snap, dict) or snap.get("v") != MIGRATED_STATE:
            return Message(N_("the migration carries no state"))
        keep = {k: st[k] for k in ("count", "head", "problems")}
        st.clear()
        st.update(copy.deepcopy(snap), **keep, v=STATE_VERSION)
        self._record_files(e)
        return None

    def _record_files(self, e: dict[str, Any]) -> None:
        for p, h in (e.get("records") or {}).items():
            self.state["files"][p] = [h, e["seq"], e["member"], e["at"]]
            if self.seen is not None and h is not None:
                self.seen.setdefault(p, {})[h] = e["seq"]


def _changes_nothing(e: dict[str, Any]) -> bool:
    """An entry that cannot change the state whatever it says: it names no records and no subject,
    and is a refusal or an action whose row writes, binds and applies nothing (a read)."""
    if e.get("records") or e.get("subject"):
        return False
    return e.get("outcome") != "ok" or e.get("action") in trust.READS


@functools.lru_cache(maxsize=1024)
def _signing_key(line: str) -> str:
    return _decode_signing_key(line)


def signing_key(line: str) -> str:
    """The signing key of a member key line, decoded once per process."""
    return _signing_key(line)


#: Entries whose signature this process verified: line hash -> the member key it verified under
#: (the key string is shared with the state: ~200 bytes an entry, bounded for a long-lived process).
_VERIFIED: dict[str, str] = {}
_VERIFIED_MAX = 200_000


def remember_signatures(lines: dict[str, str]) -> None:
    """Take lines (by hash) whose signature this client verified before, with the key it verified
    them under (``vault check``'s cache, outside the vault): a replay does not verify them again."""
    for h, key in lines.items():
        if len(_VERIFIED) >= _VERIFIED_MAX:
            break
        _VERIFIED.setdefault(h, key)


def verified_signatures(lines: list[str]) -> dict[str, str]:
    """Of ``lines`` (hashes), those whose signature this process verified, with the key."""
    return {h: _VERIFIED[h] for h in lines if h in _VERIFIED}


def _read_from(path: Path, offset: int) -> bytes:
    with open_regular(path, name=AUDIT_LOG) as f:
        f.seek(offset)
        return f.read()


# -- the state a command works with ---------------------------------------------------------------

def state(v: Vault) -> dict[str, Any]:
    """The state in force now, replayed incrementally from this client's remembered checkpoint.

    Refuses a history that does not extend what this client verified before (see ``witness``).
    """
    # One replay per process at a time: the portal serves requests from threads that share a vault.
    with _REPLAY_LOCK:
        rep = getattr(v, "_replay", None)
        if rep is None:
            cached = witness.load(v)
            rep = Replay(v, cached if cached is not None else genesis_state(v), every_signature=False)
            point = witness.remembered(v)
            if cached is None and point is not None:
                witness.check_extends(v, point)
            v._replay = rep
        before = rep.state["count"]
        st = rep.advance()
        if st["count"] != before:
            witness.save(v, st)
        return st


_REPLAY_LOCK = threading.RLock()


def counted_for_nothing(v: Vault, seqs: list[int]) -> dict[int, Message | str]:
    """Of the entries ``seqs`` (just appended by this process), those the history counts for
    nothing, with why: the state is advanced over them first."""
    state(v)
    void = v._replay.void
    return {n: void[n] for n in seqs if n in void}


def full_replay(v: Vault) -> Replay:
    """Replay from genesis, remembering every hash each path ever had (for ``vault check``)."""
    rep = Replay(v, genesis_state(v))
    rep.seen = {p: {f[0]: 0} for p, f in rep.state["files"].items()}
    rep.lines = []
    rep.digest = hashlib.sha256()
    rep.advance()
    return rep


def policy(v: Vault) -> Policy:
    return Policy(state(v)["policy"])


def members(v: Vault) -> dict[str, dict[str, Any]]:
    """Every member the history knows, as records (``name``, ``display_name`` or None, ``key``, ``roles``,
    ``dept``, ``status``)."""
    return {n: {"name": n, **{k: x for k, x in m.items() if k not in ("display", "skel")},
                "display_name": m.get("display")}
            for n, m in state(v)["members"].items()}
