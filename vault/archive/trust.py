"""The trust table: for each history action, who may take it, which records it may write, what it binds.

One row per action. ``authority`` replays the history and asks this table, at each entry, whether
the entry counts: its signer must be an active member, holding the policy right ``right`` in force
at that position (or, for a ``root`` action, the fixed role ``supervisor``); every record it names
must match one of ``writes``; and ``bind`` must find the entry consistent with the state so far
(the request a decision answers exists and is undecided, the approver is not the requester, …;
the bindings live in ``bindings``, those of holds and destructions in ``disposal``).
``apply`` then changes the state. Adding a record kind is one row here and one pattern in ``RECORDS``.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Callable

from vault.archive import bindings as b
from vault.archive import disposal as d
from vault.archive.bindings import ROOT_ROLE, Entry, State  # noqa: F401 (ROOT_ROLE: the roots' role, for authority)


# Every file the vault writes that a history entry must bind (signed records, and replaceable
# encrypted files whose swap would hand out keys): ``vault check`` names any such file no entry names.
RECORDS = (
    "policy.toml", "policy/*.toml", "members/*.toml", "rings/*.toml", "rings/*.age",
    "dossiers/*/manifest.toml", "requests/R-*.toml", "grants/G-*.toml", "holds/*.toml", "holds/lifted/*.toml",
    "destructions/D-*.toml", "reviews/*/*.toml", "intake/*.rejected.toml", "intake/invitations/*.toml",
    "paper/loans/*.toml", "paper/inventories/*.toml", "recovery/E-*.toml",
    # Key files, bound like records so that an older one put back is named and never used
    # (``keyfiles``; the actions that may write them are listed there).
    "keys/*.age", "keys/grants/*.age", "index/search/recipient.toml", "index/search/head.age",
    "index/search/g/*.age", "index/search/d/*.age", "index/search/delta/*.age",
    "index/search/base.age",  # LEGACY_RECORDS, below
)
# Records an earlier version wrote and this one only deletes: the single-file search index, which
# the first write of the sharded index deletes with its entry.
LEGACY_RECORDS = ("index/search/base.age",)
# Files that are not records, and why they need no entry: the genesis record anchors itself; the
# counters and number files under index/ are hints (numbers come from the history); document
# ciphertext is bound by its manifest's sha256; submissions are unsigned by design (anyone may
# submit); the audit files are the history; the staging journal only says where recovery looks, and
# the history decides what it finds there.
NOT_RECORDS = (
    "vault.toml", ".lock", "index/*", "index/numbers/*/*", "index/search/sequence", "dossiers/*/documents/*.age",
    "intake/*.age", "intake/*.toml", "audit/*", "backups.toml", "intake/uses/*/*", ".tmp-writes/journal",
)

# Key files (``keyfiles``) each action may write besides its own records ({obj}, {ref} as in the
# rows). The dossier rows write the dossier's table, its key releases and a search-index delta;
# removals and destructions rotate keys and rewrite the index; a merge or repair rewrites the index
# files, a rebuild also its recipient record; only a removal or a destruction replaces the index key.
_DOSSIER = ("keys/{obj}.age", "keys/grants/{obj}.*.age", "index/search/delta/*.age")
_MERGE = ("index/search/head.age", "index/search/g/*.age", "index/search/d/*.age", "index/search/delta/*.age",
          "index/search/base.age")
_INDEX = (*_MERGE, "index/search/recipient.toml", "keys/_index.age")
KEY_WRITES: dict[str, tuple[str, ...]] = {
    "dossier.create": _DOSSIER, "doc.add": _DOSSIER, "dossier.update": _DOSSIER, "intake.accept": _DOSSIER,
    "review.record": _DOSSIER, "doc.event": _DOSSIER, "dossier.close": _DOSSIER, "dossier.reopen": _DOSSIER,
    "grant.revoke": ("keys/grants/*.{obj}.age",), "grant.sweep": ("keys/grants/*.{obj}.age",),
    "grant.reissue": ("keys/grants/*.{obj}.age",),
    "member.remove": ("keys/*.age", "keys/grants/*.age", *_INDEX),
    "destroy.step": ("keys/*.age", "keys/grants/*.age", *_INDEX),
    "vault.restore": ("keys/*.age", "keys/grants/*.age"),
    "index.rebuild": (*_MERGE, "index/search/recipient.toml"), "index.repair": _MERGE, "find": _MERGE,
}


@dataclass(frozen=True)
class Row:
    """What makes an entry of one action count. ``right`` is a policy action, a function of the
    entry and state giving one, or None (any active member: reads whose key check is the cipher)."""

    right: str | Callable[[Entry, State], str] | None
    writes: tuple[str, ...] = ()  # patterns; {obj} and {ref} stand for the entry's own ids
    root: bool = False
    bind: Callable[[Entry, State], str | None] | None = None
    apply: Callable[[Entry, State], None] | None = None


def match(path: str, pattern: str) -> bool:
    """Shell-style match segment by segment: ``*`` never crosses a ``/``."""
    a, b = path.split("/"), pattern.split("/")
    return len(a) == len(b) and all(_segment(x, y) for x, y in zip(a, b))


def _segment(name: str, pattern: str) -> bool:
    # A segment without wildcards (most are: an entry's own ids are substituted into its patterns)
    # is compared as is; fnmatch would compile a new expression for every entry of the history.
    if "*" in pattern or "?" in pattern or "[" in pattern:
        return fnmatchcase(name, pattern)
    return name == pattern


def _by_head(patterns: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Patterns by their first segment and depth (none of ``RECORDS`` starts with a wildcard), so
    that a path is matched against the few that could match it: ``check`` asks for every file."""
    out: dict[str, tuple[str, ...]] = {}
    for p in patterns:
        key = f"{p.split('/', 1)[0]}/{p.count('/')}"
        out[key] = (*out.get(key, ()), p)
    return out


_RECORDS_BY_HEAD = _by_head(RECORDS)
assert all(not any(c in p.split("/", 1)[0] for c in "*?[") for p in RECORDS)


@functools.lru_cache(maxsize=1 << 16)  # (``check`` asks for every record path, twice)
def is_record(path: str) -> bool:
    candidates = _RECORDS_BY_HEAD.get(f"{path.split('/', 1)[0]}/{path.count('/')}", ())
    return any(match(path, p) for p in candidates)


def is_known_file(path: str) -> bool:
    return is_record(path) or any(match(path, p) for p in NOT_RECORDS)


DOSSIER = ("dossiers/{obj}/manifest.toml",)
# A change that adds keys commits the dossier's key table and its grants' key releases with it.
KEYS = ("keys/{obj}.age", "keys/grants/{obj}.*.age")
RING = ("rings/*.toml", "rings/*.age")

TRUST: dict[str, Row] = {
    # Roots: only an active supervisor, whatever the policy says.
    "member.add": Row("member.manage", ("members/{obj}.toml", *RING), root=True, bind=b.bind_member_add,
                      apply=b.apply_member_add),
    # A removal also stages every key table, the intake and index keys and the index re-sealed to
    # the new rings (``KEY_WRITES``).
    "member.remove": Row("member.manage", ("members/{obj}.toml", *RING, "keys/*.age"), root=True,
                         bind=b.bind_member_remove, apply=b.apply_member_remove),
    "member.rename": Row("member.manage", ("members/{obj}.toml",), root=True, bind=b.bind_member_rename,
                         apply=b.apply_member_rename),
    "policy.update": Row("policy.manage", ("policy.toml", "policy/*.toml"), root=True, bind=b.bind_policy),
    # Dossiers and documents.
    "dossier.create": Row("dossier.create", DOSSIER, bind=b.bind_create, apply=b.apply_create),
    "doc.add": Row("doc.add", (*DOSSIER, *KEYS), bind=b.live_dossier),
    "doc.event": Row("doc.add", DOSSIER, bind=b.live_dossier),
    "dossier.close": Row("doc.add", DOSSIER, bind=b.live_dossier),
    "dossier.update": Row("dossier.update", (*DOSSIER, *KEYS), bind=b.bind_update),
    "dossier.reopen": Row("doc.add", DOSSIER, bind=b.live_dossier),
    "review.record": Row("review.record", ("reviews/{obj}/*.toml", *KEYS), bind=b.bind_review),
    "intake.accept": Row("intake.manage", (*DOSSIER, *KEYS), bind=b.bind_intake, apply=b.apply_intake),
    "intake.invite": Row("intake.invite", ("intake/invitations/{ref}.toml",), bind=b.bind_invite),
    "intake.reject": Row("intake.manage", ("intake/{ref}.rejected.toml",), bind=b.bind_intake, apply=b.apply_intake),
    # Requests and grants [R-3.4.1, R-3.4.2].
    "request.access": Row("request.create", ("requests/{ref}.toml",), bind=b.bind_request, apply=b.apply_request),
    "request.copy": Row("request.create", ("requests/{ref}.toml",), bind=b.bind_request, apply=b.apply_request),
    "request.approve": Row(b.request_right, ("requests/{obj}.decision.toml",), bind=b.bind_decision, apply=b.apply_decision),
    "request.deny": Row(b.request_right, ("requests/{obj}.decision.toml",), bind=b.bind_decision, apply=b.apply_decision),
    "request.use": Row(None, ("requests/{obj}.used.toml",), bind=b.bind_use,
                       apply=lambda e, s: s["requests"][e["obj"]].update(used=True)),
    "grant.create": Row("grant.manage", ("grants/{ref}.toml", "requests/{obj}.resolution.toml"), bind=b.bind_grant,
                        apply=b.apply_grant),
    "grant.revoke": Row("grant.manage", ("grants/{obj}.closed.toml",), bind=b.bind_close, apply=b.apply_close),
    "grant.sweep": Row("grant.sweep", ("grants/{obj}.closed.toml",), bind=b.bind_close, apply=b.apply_close),
    # The key release of an active grant the history holds none of (a restored vault): re-issued
    # by a member who can open the key tables (a retried grant, or 'vault repair').
    "grant.reissue": Row("dossier.read", bind=b.bind_reissue),
    # Holds and destruction [R-3.3.2].
    "hold.add": Row("hold.manage", ("holds/{obj}.toml",), bind=d.bind_hold_add,
                    apply=d.apply_hold_add),
    "hold.remove": Row("hold.manage", ("holds/{obj}.toml", "holds/lifted/{obj}.*.toml"), bind=d.bind_hold_remove,
                       apply=d.apply_hold_remove),
    "destroy.request": Row("destroy.request", ("destructions/{ref}.toml",), bind=d.bind_destroy_request,
                           apply=d.apply_destroy_request),
    "destroy.approve": Row("destroy.approve", ("destructions/{obj}.approval.toml",), bind=d.bind_destroy_approve,
                           apply=d.apply_destroy_approve),
    "destroy.cancel": Row(None, ("destructions/{obj}.closed.toml",), bind=d.bind_destroy_close,
                          apply=d.apply_destroy_close),
    "destroy.deny": Row("destroy.approve", ("destructions/{obj}.closed.toml",), bind=d.bind_destroy_close,
                        apply=d.apply_destroy_close),
    "destroy.start": Row("destroy.execute", ("destructions/{obj}.execution.toml",), bind=d.bind_destroy_start,
                         apply=d.apply_destroy_start),
    "destroy.step": Row("destroy.execute", ("destructions/{obj}.execution.toml",), bind=d.bind_destroy_step),
    "destroy.execute": Row("destroy.execute", ("dossiers/*/manifest.toml",), bind=d.bind_destroy_execute,
                           apply=d.apply_destroy_execute),
    "destroy.certify": Row("destroy.execute", ("destructions/{obj}.certificate.toml",), bind=d.bind_certify,
                           apply=lambda e, s: s["destructions"][e["obj"]].update(certificate=e["seq"])),
    # Paper originals [R-3.2.3, R-3.4.2].
    "paper.lend": Row("grant.manage", ("paper/loans/{ref}.toml",), bind=b.bind_paper_lend,
                      apply=lambda e, s: b.loans(s).__setitem__(e["ref"], {"dossier": e["obj"], "returned": False})),
    "paper.return": Row("grant.manage", ("paper/loans/{ref}.returned.toml", *DOSSIER), bind=b.bind_paper_return,
                        apply=lambda e, s: b.loans(s)[e["ref"]].update(returned=True)),
    "paper.locate": Row("doc.add", DOSSIER, bind=b.live_dossier),
    "paper.inventory": Row("doc.add", ("paper/inventories/{ref}.toml",), bind=b.archive_dept),
    # Disaster-recovery exports: two supervisors (fixed in code, like the roots), then one run.
    "recovery.request": Row(None, ("recovery/{ref}.toml",), bind=b.bind_recovery_request,
                            apply=b.apply_recovery_request),
    "recovery.approve": Row(None, ("recovery/{obj}.approval.toml",), bind=b.bind_recovery_approve,
                            apply=lambda e, s: b.recoveries(s)[e["obj"]].update(approved_by=e["member"])),
    "recovery.export": Row(None, ("recovery/{obj}.done.toml",), bind=b.bind_recovery_export,
                           apply=lambda e, s: b.recoveries(s)[e["obj"]].update(done=True)),
    # Reads and reports: they write nothing; the right is the policy's (keys do the rest).
    "doc.view": Row("doc.view"),
    "doc.copy": Row(None),
    "text.read": Row(None),
    "doc.save": Row("doc.save"),
    "doc.export": Row(None),
    "dossier.export": Row(None),
    "register": Row("dossier.list"),
    "dossier.read": Row(None),
    "dossier.completeness": Row("review.read"),
    "review.completeness": Row("review.read"),
    "review.due": Row("review.read"),
    "review.note": Row(None),
    "review.notify": Row("review.read"),
    "find": Row("find"),
    "index.rebuild": Row("find"),  # the search index is a hint under index/, verified by its own signatures
    "index.repair": Row("find"),
    "audit.read": Row("audit.read"),
    "vault.open": Row(None),
    # The backup targets a destruction must reach: registered by a member who may check the vault
    # (the backup job's role), so that deleting backups.toml is named.
    "backup.target": Row("check", ("backups.toml",)),
    # A restore binds the key files it took from the key mirror (newer than the snapshot: what a
    # destruction removed stays removed) and drops the key releases no backup holds; its member
    # opened the rings, as anyone holding dossier.read can.
    "vault.restore": Row("dossier.read"),
    # Finishing interrupted commands writes only what their own entries named: the archive department.
    "vault.repair": Row("dossier.read"),
}


# Actions whose entries change nothing: no record, no binding, no state (reads and reports).
READS = frozenset(a for a, r in TRUST.items() if not (r.writes or r.root or r.bind or r.apply))


def row(action: str) -> Row | None:
    return TRUST.get(action)
