"""The trust table: for each history action, who may take it, which records it may write, what it binds.

One row per action. ``authority`` replays the history and asks this table, at each entry, whether
the entry counts: its signer must be an active member, holding the policy right ``right`` in force
at that position (or, for a ``root`` action, the fixed role ``supervisor``); every record it names
must match one of ``writes``; and ``bind`` must find the entry consistent with the state so far
(the request a decision answers exists and is undecided, the approver is not the requester, …).
``apply`` then changes the state. Adding a record kind is one row here and one pattern in ``RECORDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Callable

from vault.errors import InputError
from vault.i18n import Message, N_
from vault.store import names

# The role that holds the roots (members, rings, policy): fixed in code, never taken from a policy.
ROOT_ROLE = "supervisor"

# Every file the vault writes that a history entry must bind (signed records, and replaceable
# encrypted files whose swap would hand out keys): ``vault check`` names any such file no entry names.
RECORDS = (
    "policy.toml", "policy/*.toml", "members/*.toml", "rings/*.toml", "rings/*.age",
    "dossiers/*/manifest.toml", "requests/R-*.toml", "grants/G-*.toml", "holds/*.toml", "holds/lifted/*.toml",
    "destructions/D-*.toml", "reviews/*/*.toml", "intake/*.rejected.toml", "intake/invitations/*.toml",
    "paper/loans/*.toml", "paper/inventories/*.toml", "recovery/E-*.toml",
)
# Files that are not records, and why they need no entry: the genesis record anchors itself; key
# tables and the intake and index keys are encrypted to the ring recipients the history binds (a
# swapped one hands its writer nothing; the backup key mirror restores the newest beside older data);
# indexes are hints verified against manifests; document ciphertext is bound by its manifest's
# sha256; submissions are unsigned by design (anyone may submit); key releases are deleted to end a
# grant, and a forged one could only hold keys its writer already had; the audit files are the history.
NOT_RECORDS = (
    "vault.toml", ".lock", "index/*", "index/*/*", "index/*/*/*", "dossiers/*/documents/*.age", "intake/*.age", "intake/*.toml",
    "keys/*.age", "keys/grants/*.age", "audit/*", "backups.toml", "intake/uses/*/*",
)

State = dict[str, Any]
Entry = dict[str, Any]


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


def is_record(path: str) -> bool:
    return any(match(path, p) for p in RECORDS)


def is_known_file(path: str) -> bool:
    return is_record(path) or any(match(path, p) for p in NOT_RECORDS)


# -- bindings: each returns a reason the entry counts for nothing, or None ----------------------

def _dossier_of(e: Entry, s: State) -> str | None:
    d = s["dossiers"].get(e.get("obj") or "")
    if d is None:
        return Message(N_("names dossier {obj!r}, which the history never created"), obj=e.get('obj'))
    if e.get("number") and e["number"].split("/")[0] != d["number"]:
        return Message(N_("names number {number} but dossier {obj} is {number2}"), number=e['number'], obj=e['obj'], number2=d['number'])
    return None


def _live_dossier(e: Entry, s: State) -> str | None:
    why = _dossier_of(e, s)
    if why is None and s["dossiers"][e["obj"]]["destroyed"]:
        why = Message(N_("dossier {obj} was destroyed"), obj=e['obj'])
    return why


def _bind_create(e: Entry, s: State) -> str | None:
    if e.get("obj") in s["dossiers"] or not e.get("number"):
        return Message(N_("creates a dossier that exists, or without a number"))
    if e["number"] in s["numbers"]:
        return Message(N_("issues number {number} a second time"), number=e['number'])
    return None


def _apply_create(e: Entry, s: State) -> None:
    s["dossiers"][e["obj"]] = {"number": e["number"], "destroyed": False}
    s["numbers"][e["number"]] = e["obj"]


def _bind_member_add(e: Entry, s: State) -> str | None:
    sub = e.get("subject") or {}
    if e.get("obj") in s["members"]:
        return Message(N_("adds member {obj}, who exists (names are never reused)"), obj=e.get('obj'))
    if not all(isinstance(sub.get(k), t) for k, t in (("key", str), ("roles", list), ("dept", str))):
        return Message(N_("adds a member without key, roles and dept"))
    if any(m["key"] == sub["key"] for m in s["members"].values()):
        return Message(N_("adds a key that already belongs to a member"))
    # Entries without a display name (every one written before display names existed) keep the
    # rule they were written under: ids are compared by the command that adds a member.
    return _bind_display(e["obj"], sub["display_name"], s) if "display_name" in sub else None


def _bind_member_rename(e: Entry, s: State) -> str | None:
    m = s["members"].get(e.get("obj") or "")
    if m is None or m["status"] != "active":
        return Message(N_("renames {obj!r}, who is not an active member"), obj=e.get("obj"))
    return _bind_display(e["obj"], (e.get("subject") or {}).get("display_name"), s, only_display=True)


def _apply_member_rename(e: Entry, s: State) -> None:
    m = s["members"][e["obj"]]
    m["display"] = e["subject"]["display_name"]
    m.pop("skel", None)
    _skeletons(e["obj"], m)


def _bind_display(ident: str, display: object, s: State, *, only_display: bool = False) -> str | None:
    """A new member's id and display name may look like no other member's, former ones included:
    a name that reads like someone else's would let one member pass for another in every listing."""
    if not isinstance(display, str):
        return Message(N_("adds a member with a display name that is not text"))
    try:
        if names.display_name(display, strict=False) != display:
            return Message(N_("adds a member with a display name that is not normalised"))
    except InputError as err:
        return Message(N_("adds a member with a refused display name ({why})"), why=str(err))
    # A member's own names are not "another's"; every other member's, former ones too, are.
    for name in (display,) if only_display else (ident, display):
        sk = names.skeleton(name)
        others = sorted(i for i, m in s["members"].items() if i != ident and sk in _skeletons(i, m))
        if others:
            return Message(N_("adds member {ident} whose name looks like that of {others}"), ident=ident,
                           others=", ".join(others))
    return None


def _skeletons(ident: str, m: dict[str, Any]) -> list[str]:
    """The skeletons of a member's id and display name, kept in the state so that checking a new
    name costs one comparison per member, not two normalisations."""
    if "skel" not in m:
        m["skel"] = [names.skeleton(ident), *([names.skeleton(m["display"])] if m.get("display") else [])]
    return m["skel"]


def _apply_member_add(e: Entry, s: State) -> None:
    sub = e["subject"]
    s["members"][e["obj"]] = {"key": sub["key"], "roles": sorted(sub["roles"]), "dept": sub["dept"],
                              "status": "active", "since": e["seq"], "removed": None}
    if sub.get("display_name"):
        s["members"][e["obj"]]["display"] = sub["display_name"]
    _skeletons(e["obj"], s["members"][e["obj"]])


def _bind_member_remove(e: Entry, s: State) -> str | None:
    m = s["members"].get(e.get("obj") or "")
    if m is None or m["status"] != "active":
        return Message(N_("removes {obj!r}, who is not an active member"), obj=e.get('obj'))
    if e["obj"] == e["member"]:
        return Message(N_("a member removes themself"))
    return None


def _apply_member_remove(e: Entry, s: State) -> None:
    m = s["members"][e["obj"]]
    m["status"], m["removed"] = "removed", e["seq"]
    # Removal closes the leaver's grants in the same entry: a fact, whatever files say later.
    for g in s["grants"].values():
        if g["grantee"] == e["obj"] and g["closed"] is None:
            g["closed"] = "member-removed"


def _bind_policy(e: Entry, s: State) -> str | None:
    want = f"policy/{s['policy_version'] + 1}.toml"
    if set(e.get("records", {})) != {"policy.toml", want}:
        return Message(N_("a policy update must write policy.toml and {want}"), want=want)
    return None  # the rings and supervisor rights are compared by authority, which reads the file


def _request_right(e: Entry, s: State) -> str:
    r = s["requests"].get(e.get("obj") or "")
    return "request.approve-copy" if r and r["kind"] == "copy" else "request.approve-access"


def _bind_request(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in s["requests"]:
        return Message(N_("files a request under a number that exists"))
    role = (e.get("subject") or {}).get("approver_role")
    if role is not None and (e["action"] != "request.access"
                             or "dept-head" not in s["members"][e["member"]]["roles"]):
        return Message(N_("names an approver role for a request that is not a department head's own consultation"))
    if not e.get("obj") and not e.get("number") and e["action"] == "request.access":
        return None  # a consultation by customer name: the grant resolves it to one dossier
    return _live_dossier(e, s)


def _apply_request(e: Entry, s: State) -> None:
    s["requests"][e["ref"]] = {"kind": e["action"].split(".")[1], "dossier": e.get("obj") or None,
                               "target": e.get("number") or "",
                               "by": e["member"], "dept": s["members"][e["member"]]["dept"], "seq": e["seq"],
                               "decision": None, "decided_by": None, "used": False, "grant": None,
                               "approver_role": (e.get("subject") or {}).get("approver_role")}


def _bind_decision(e: Entry, s: State) -> str | None:
    r = s["requests"].get(e.get("obj") or "")
    if r is None:
        return Message(N_("decides {obj!r}, which the history never filed"), obj=e.get('obj'))
    if r["decision"] is not None:
        return Message(N_("decides {obj} a second time"), obj=e['obj'])
    # Two-person rule on the signers of the entries, never on a typed field.
    if e["member"] == r["by"]:
        return Message(N_("{member} decides their own request {obj}"), member=e['member'], obj=e['obj'])
    signer = s["members"][e["member"]]
    if r["approver_role"]:  # a department head's own request: the role the policy named when it was filed
        if r["approver_role"] not in signer["roles"]:
            return Message(N_("{member} is not a {approver_role}, who decides {obj}"), member=e['member'], approver_role=r['approver_role'], obj=e['obj'])
        return None
    if r["kind"] == "access" and not ("dept-head" in signer["roles"] and signer["dept"] == r["dept"]):
        return Message(N_("{member} is not a head of department {dept}, the requester's"), member=e['member'], dept=r['dept'])
    if r["kind"] == "copy" and ROOT_ROLE not in signer["roles"]:
        return Message(N_("{member} is not a supervisor, who decides copies"), member=e['member'])
    return None


def _apply_decision(e: Entry, s: State) -> None:
    r = s["requests"][e["obj"]]
    r["decision"] = "approved" if e["action"] == "request.approve" else "denied"
    r["decided_by"] = e["member"]


def _bind_use(e: Entry, s: State) -> str | None:
    r = s["requests"].get(e.get("obj") or "")
    if r is None or r["kind"] != "copy" or r["decision"] != "approved" or r["used"] or r["by"] != e["member"]:
        return Message(N_("uses {obj!r}, which is not an unused copy approval of {member}"), obj=e.get('obj'), member=e['member'])
    return None


def _bind_grant(e: Entry, s: State) -> str | None:
    r = s["requests"].get(e.get("obj") or "")
    if r is None or r["kind"] != "access" or r["decision"] != "approved" or r["grant"] is not None:
        return Message(N_("grants {obj!r}, which is not an approved, ungranted access request"), obj=e.get('obj'))
    if not e.get("ref") or e["ref"] in s["grants"]:
        return Message(N_("grants under a number that exists"))
    if s["members"][r["by"]]["status"] != "active":
        return Message(N_("grants to {by}, who is no longer a member"), by=r['by'])
    resolution = f"requests/{e['obj']}.resolution.toml"
    if r["dossier"] is None:  # by customer name: the grant names the dossier it resolved to
        dossier = s["numbers"].get((e.get("number") or "").split("/")[0])
        if dossier is None or resolution not in e.get("records", {}):
            return Message(N_("a grant of a request by name resolves it to a dossier the history created"))
    else:
        dossier = r["dossier"]
        if resolution in e.get("records", {}) or (e.get("number") or "") != r["target"]:
            return Message(N_("grants another object than request {obj} names"), obj=e['obj'])
    if s["dossiers"][dossier]["destroyed"]:
        return Message(N_("grants a destroyed dossier"))
    return None


def _apply_grant(e: Entry, s: State) -> None:
    r = s["requests"][e["obj"]]
    r["grant"] = e["ref"]
    dossier = r["dossier"]
    if dossier is None:
        dossier = s["numbers"][e["number"].split("/")[0]]
        r["resolved"] = {"dossier": dossier, "number": e["number"], "by": e["member"]}
    s["grants"][e["ref"]] = {"request": e["obj"], "dossier": dossier, "grantee": r["by"], "by": e["member"],
                             "seq": e["seq"], "closed": None}


def _bind_close(e: Entry, s: State) -> str | None:
    g = s["grants"].get(e.get("obj") or "")
    if g is None or g["closed"] is not None:
        return Message(N_("closes {obj!r}, which is not an open grant"), obj=e.get('obj'))
    return None


def _apply_close(e: Entry, s: State) -> None:
    s["grants"][e["obj"]]["closed"] = "revoked" if e["action"] == "grant.revoke" else "expired-swept"


def _bind_hold_add(e: Entry, s: State) -> str | None:
    return _live_dossier(e, s) or (Message(N_("dossier {obj} is already held"), obj=e['obj']) if e["obj"] in s["holds"] else None)


def _bind_hold_remove(e: Entry, s: State) -> str | None:
    if e.get("obj") not in s["holds"]:
        return Message(N_("lifts a hold on {obj!r} that is not in force"), obj=e.get('obj'))
    # Lifting frees a dossier for destruction: the rank that approves one [R-3.3.2].
    if ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return Message(N_("{member} is not a supervisor, who lifts holds"), member=e['member'])
    return None


def _bind_destroy_request(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in s["destructions"]:
        return Message(N_("files a destruction under a number that exists"))
    return _live_dossier(e, s)


def _apply_destroy_request(e: Entry, s: State) -> None:
    s["destructions"][e["ref"]] = {"dossier": e["obj"], "target": e["number"], "by": e["member"],
                                   "state": "requested", "approved_by": None, "seq": e["seq"]}


def _bind_destroy_approve(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != "requested":
        return Message(N_("approves {obj!r}, which is not a pending destruction"), obj=e.get('obj'))
    if e["member"] == d["by"] or ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return Message(N_("a destruction is approved by a supervisor other than its requester"))
    return None


def _apply_destroy_approve(e: Entry, s: State) -> None:
    d = s["destructions"][e["obj"]]
    d["state"], d["approved_by"] = "approved", e["member"]


def _bind_destroy_close(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] not in ("requested", "approved"):
        return Message(N_("closes {obj!r}, which is not a destruction that has not started"), obj=e.get('obj'))
    sup = ROOT_ROLE in s["members"][e["member"]]["roles"]
    if e["action"] == "destroy.cancel" and not (sup or e["member"] == d["by"]):
        return Message(N_("a destruction is cancelled by its requester or a supervisor"))
    if e["action"] == "destroy.deny" and not (sup and e["member"] != d["by"]):
        return Message(N_("a destruction is denied by a supervisor other than its requester"))
    return None


def _apply_destroy_close(e: Entry, s: State) -> None:
    s["destructions"][e["obj"]]["state"] = "cancelled" if e["action"] == "destroy.cancel" else "denied"


def _bind_destroy_start(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != "approved":
        return Message(N_("starts {obj!r}, which is not an approved destruction"), obj=e.get('obj'))
    if d["dossier"] in s["holds"]:
        return Message(N_("starts a destruction of a dossier under a legal hold"))
    return None


def _apply_destroy_start(e: Entry, s: State) -> None:
    d = s["destructions"][e["obj"]]
    d["state"], d["executed_by"], d["certificate"] = "executing", e["member"], None


def _bind_destroy_step(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] not in ("executing", "executed"):
        return Message(N_("records a step of {obj!r}, which is not being executed"), obj=e.get('obj'))
    return None


def _bind_destroy_execute(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != "executing":
        return Message(N_("executes {obj!r}, which is not an approved destruction whose execution started"), obj=e.get('obj'))
    if d["dossier"] in s["holds"]:
        return Message(N_("executes a destruction of a dossier under a legal hold"))
    for p in e.get("records", {}):
        if p != f"dossiers/{d['dossier']}/manifest.toml":
            return Message(N_("writes {p}, outside the dossier the approved request names"), p=p)
    return None


def _apply_destroy_execute(e: Entry, s: State) -> None:
    d = s["destructions"][e["obj"]]
    d["state"] = "executed"
    if "/" not in d["target"]:
        s["dossiers"][d["dossier"]]["destroyed"] = True
        for g in s["grants"].values():
            if g["dossier"] == d["dossier"] and g["closed"] is None:
                g["closed"] = "destroyed"


def _bind_certify(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != "executed" or d.get("certificate") is not None:
        return Message(N_("certifies {obj!r}, which is not an executed, uncertified destruction"), obj=e.get('obj'))
    if d["executed_by"] != e["member"] and ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return Message(N_("a certificate is signed by the member who executed the destruction, or a supervisor"))
    return None


def _bind_intake(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in s["intake"]:
        return Message(N_("decides a submission twice"))
    return _live_dossier(e, s) if e["action"] == "intake.accept" else None


def _apply_intake(e: Entry, s: State) -> None:
    s["intake"][e["ref"]] = e["action"].split(".")[1]


def _bind_review(e: Entry, s: State) -> str | None:
    return _live_dossier(e, s)


# Only the archive department lends, takes back and counts paper originals [R-3.2.3].
ARCHIVE_ROLES = frozenset({"archivist", ROOT_ROLE})


def _archive_dept(e: Entry, s: State) -> str | None:
    if not ARCHIVE_ROLES & set(s["members"][e["member"]]["roles"]):
        return Message(N_("{member} does not work in the archive, which keeps the paper originals"), member=e['member'])
    return None


def _bind_paper_lend(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in s["loans"]:
        return Message(N_("lends under a loan number that exists"))
    return _archive_dept(e, s) or _live_dossier(e, s)


def _bind_paper_return(e: Entry, s: State) -> str | None:
    loan = s["loans"].get(e.get("ref") or "")
    if loan is None or loan["returned"] or loan["dossier"] != e.get("obj"):
        return Message(N_("returns {loan!r}, which is not an open loan of dossier {dossier}"), loan=e.get('ref'), dossier=e.get('obj'))
    return _archive_dept(e, s) or _live_dossier(e, s)


# A whole-vault disaster-recovery export: two supervisors, told apart by the entries' signers [R-3.3.1].
def _supervisor(e: Entry, s: State) -> str | None:
    if ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return f"{e['member']} is not a supervisor: a whole-vault export needs two"
    return None


def _recoveries(s: State) -> dict[str, Any]:
    return s.setdefault("recoveries", {})  # a state replayed before these entries existed has none


def _bind_recovery_request(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e.get("obj") != e["ref"] or e["ref"] in _recoveries(s):
        return "asks for a recovery export under a number that exists"
    return _supervisor(e, s)


def _apply_recovery_request(e: Entry, s: State) -> None:
    _recoveries(s)[e["ref"]] = {"by": e["member"], "approved_by": None, "done": False}


def _bind_recovery_approve(e: Entry, s: State) -> str | None:
    r = _recoveries(s).get(e.get("obj") or "")
    if r is None or r["approved_by"] is not None or r["done"]:
        return f"approves {e.get('obj')!r}, which is not a recovery export waiting for its second approval"
    if r["by"] == e["member"]:
        return "the second approval of a recovery export is by another supervisor than the first"
    return _supervisor(e, s)


def _bind_recovery_export(e: Entry, s: State) -> str | None:
    r = _recoveries(s).get(e.get("obj") or "")
    if r is None or r["approved_by"] is None or r["done"]:
        return f"writes {e.get('obj')!r}, which is not an approved, unwritten recovery export"
    if e["member"] not in (r["by"], r["approved_by"]):
        return "a recovery export is written by one of the two supervisors who approved it"
    return _supervisor(e, s)


DOSSIER = ("dossiers/{obj}/manifest.toml",)
# A change that adds keys commits the dossier's key table and its grants' key releases with it.
KEYS = ("keys/{obj}.age", "keys/grants/{obj}.*.age")
RING = ("rings/*.toml", "rings/*.age")

TRUST: dict[str, Row] = {
    # Roots: only an active supervisor, whatever the policy says.
    "member.add": Row("member.manage", ("members/{obj}.toml", *RING), root=True, bind=_bind_member_add,
                      apply=_apply_member_add),
    # A removal also stages every key table and the intake and index keys, re-wrapped to the new rings.
    "member.remove": Row("member.manage", ("members/{obj}.toml", *RING, "keys/*.age"), root=True,
                         bind=_bind_member_remove, apply=_apply_member_remove),
    "member.rename": Row("member.manage", ("members/{obj}.toml",), root=True, bind=_bind_member_rename,
                         apply=_apply_member_rename),
    "policy.update": Row("policy.manage", ("policy.toml", "policy/*.toml"), root=True, bind=_bind_policy),
    # Dossiers and documents.
    "dossier.create": Row("dossier.create", DOSSIER, bind=_bind_create, apply=_apply_create),
    "doc.add": Row("doc.add", (*DOSSIER, *KEYS), bind=_live_dossier),
    "doc.event": Row("doc.add", DOSSIER, bind=_live_dossier),
    "dossier.close": Row("doc.add", DOSSIER, bind=_live_dossier),
    "dossier.update": Row("dossier.update", (*DOSSIER, *KEYS), bind=_live_dossier),
    "dossier.reopen": Row("doc.add", DOSSIER, bind=_live_dossier),
    "review.record": Row("review.record", ("reviews/{obj}/*.toml", *KEYS), bind=_bind_review),
    "intake.accept": Row("intake.manage", (*DOSSIER, *KEYS), bind=_bind_intake, apply=_apply_intake),
    "intake.invite": Row("intake.invite", ("intake/invitations/{ref}.toml",), bind=_live_dossier),
    "intake.reject": Row("intake.manage", ("intake/{ref}.rejected.toml",), bind=_bind_intake, apply=_apply_intake),
    # Requests and grants [R-3.4.1, R-3.4.2].
    "request.access": Row("request.create", ("requests/{ref}.toml",), bind=_bind_request, apply=_apply_request),
    "request.copy": Row("request.create", ("requests/{ref}.toml",), bind=_bind_request, apply=_apply_request),
    "request.approve": Row(_request_right, ("requests/{obj}.decision.toml",), bind=_bind_decision, apply=_apply_decision),
    "request.deny": Row(_request_right, ("requests/{obj}.decision.toml",), bind=_bind_decision, apply=_apply_decision),
    "request.use": Row(None, ("requests/{obj}.used.toml",), bind=_bind_use,
                       apply=lambda e, s: s["requests"][e["obj"]].update(used=True)),
    "grant.create": Row("grant.manage", ("grants/{ref}.toml", "requests/{obj}.resolution.toml"), bind=_bind_grant,
                        apply=_apply_grant),
    "grant.revoke": Row("grant.manage", ("grants/{obj}.closed.toml",), bind=_bind_close, apply=_apply_close),
    "grant.sweep": Row("grant.sweep", ("grants/{obj}.closed.toml",), bind=_bind_close, apply=_apply_close),
    # Holds and destruction [R-3.3.2].
    "hold.add": Row("hold.manage", ("holds/{obj}.toml",), bind=_bind_hold_add,
                    apply=lambda e, s: s["holds"].__setitem__(e["obj"], e["seq"])),
    "hold.remove": Row("hold.manage", ("holds/{obj}.toml", "holds/lifted/{obj}.*.toml"), bind=_bind_hold_remove,
                       apply=lambda e, s: s["holds"].pop(e["obj"])),
    "destroy.request": Row("destroy.request", ("destructions/{ref}.toml",), bind=_bind_destroy_request,
                           apply=_apply_destroy_request),
    "destroy.approve": Row("destroy.approve", ("destructions/{obj}.approval.toml",), bind=_bind_destroy_approve,
                           apply=_apply_destroy_approve),
    "destroy.cancel": Row(None, ("destructions/{obj}.closed.toml",), bind=_bind_destroy_close,
                          apply=_apply_destroy_close),
    "destroy.deny": Row("destroy.approve", ("destructions/{obj}.closed.toml",), bind=_bind_destroy_close,
                        apply=_apply_destroy_close),
    "destroy.start": Row("destroy.execute", ("destructions/{obj}.execution.toml",), bind=_bind_destroy_start,
                         apply=_apply_destroy_start),
    "destroy.step": Row("destroy.execute", ("destructions/{obj}.execution.toml",), bind=_bind_destroy_step),
    "destroy.execute": Row("destroy.execute", ("dossiers/*/manifest.toml",), bind=_bind_destroy_execute,
                           apply=_apply_destroy_execute),
    "destroy.certify": Row("destroy.execute", ("destructions/{obj}.certificate.toml",), bind=_bind_certify,
                           apply=lambda e, s: s["destructions"][e["obj"]].update(certificate=e["seq"])),
    # Paper originals [R-3.2.3, R-3.4.2].
    "paper.lend": Row("grant.manage", ("paper/loans/{ref}.toml",), bind=_bind_paper_lend,
                      apply=lambda e, s: s["loans"].__setitem__(e["ref"], {"dossier": e["obj"], "returned": False})),
    "paper.return": Row("grant.manage", ("paper/loans/{ref}.returned.toml", *DOSSIER), bind=_bind_paper_return,
                        apply=lambda e, s: s["loans"][e["ref"]].update(returned=True)),
    "paper.locate": Row("doc.add", DOSSIER, bind=_live_dossier),
    "paper.inventory": Row("doc.add", ("paper/inventories/{ref}.toml",), bind=_archive_dept),
    # Disaster-recovery exports: two supervisors (fixed in code, like the roots), then one run.
    "recovery.request": Row(None, ("recovery/{ref}.toml",), bind=_bind_recovery_request,
                            apply=_apply_recovery_request),
    "recovery.approve": Row(None, ("recovery/{obj}.approval.toml",), bind=_bind_recovery_approve,
                            apply=lambda e, s: _recoveries(s)[e["obj"]].update(approved_by=e["member"])),
    "recovery.export": Row(None, ("recovery/{obj}.done.toml",), bind=_bind_recovery_export,
                           apply=lambda e, s: _recoveries(s)[e["obj"]].update(done=True)),
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
    # Finishing interrupted commands writes only what their own entries named: the archive department.
    "vault.repair": Row("dossier.read"),
}


def row(action: str) -> Row | None:
    return TRUST.get(action)
