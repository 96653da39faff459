"""The bindings of the trust table: for each action, what makes an entry consistent with the state so far, and what it changes.

Each ``bind_*`` returns why an entry counts for nothing (or None); each ``apply_*`` changes the
replayed state once it counts. ``trust`` names, per action, which of these apply.
"""

from __future__ import annotations

from typing import Any

from vault.archive.policy import Policy
from vault.archive.states import GrantState, MemberStatus, RequestState
from vault.errors import InputError
from vault.i18n import Message, N_
from vault.store import names

# The role that holds the roots (members, rings, policy): fixed in code, never taken from a policy.
ROOT_ROLE = "supervisor"
# The role whose update right reaches only its own department's dossiers [R-2.2].
LIAISON_ROLE = "liaison"

State = dict[str, Any]
Entry = dict[str, Any]


# -- bindings: each returns a reason the entry counts for nothing, or None ----------------------

def dossier_of(e: Entry, s: State) -> str | None:
    d = s["dossiers"].get(e.get("obj") or "")
    if d is None:
        return Message(N_("names dossier {obj!r}, which the history never created"), obj=e.get('obj'))
    if e.get("number") and e["number"].split("/")[0] != d["number"]:
        return Message(N_("names number {number} but dossier {obj} is {number2}"), number=e['number'], obj=e['obj'], number2=d['number'])
    return None


def live_dossier(e: Entry, s: State) -> str | None:
    why = dossier_of(e, s)
    if why is None and s["dossiers"][e["obj"]]["destroyed"]:
        why = Message(N_("dossier {obj} was destroyed"), obj=e['obj'])
    return why


def bind_update(e: Entry, s: State) -> str | None:
    """Who reads every dossier updates any; otherwise the right is a liaison's, for a dossier of the
    department the supervisor-signed member record names [R-2.2, R-3.5.1] — never the member's word."""
    why = live_dossier(e, s)
    if why is not None:
        return why
    signer = s["members"][e["member"]]
    if Policy(s["policy"]).may(signer["roles"], "dossier.read"):
        return None
    dept = s["dossiers"][e["obj"]].get("dept")
    if LIAISON_ROLE in signer["roles"] and dept is not None and signer["dept"] == dept:
        return None
    if dept is None:
        return Message(N_("{member} ({dept}) may update only a dossier of their own department; {obj} is of no "
                          "department the history names"), member=e['member'], dept=signer['dept'], obj=e['obj'])
    return Message(N_("{member} ({dept}) may update only a dossier of their own department; {obj} is {other}"),
                   member=e['member'], dept=signer['dept'], obj=e['obj'], other=dept)


def bind_invite(e: Entry, s: State) -> str | None:
    """An invitation is issued by who manages intake, or for a dossier of the issuer's department (§19.1)."""
    why = live_dossier(e, s)
    if why is not None:
        return why
    signer = s["members"][e["member"]]
    if Policy(s["policy"]).may(signer["roles"], "intake.manage") or signer["dept"] == s["dossiers"][e["obj"]].get("dept"):
        return None
    return Message(N_("{member} ({dept}) may invite only for a dossier of their own department"),
                   member=e['member'], dept=signer['dept'])


def bind_create(e: Entry, s: State) -> str | None:
    if e.get("obj") in s["dossiers"] or not e.get("number"):
        return Message(N_("creates a dossier that exists, or without a number"))
    if e["number"] in s["numbers"]:
        return Message(N_("issues number {number} a second time"), number=e['number'])
    sub = e.get("subject")
    if sub is not None and not (isinstance(sub, dict) and set(sub) == {"dept"} and isinstance(sub["dept"], str)):
        return Message(N_("a dossier's creation names its department and nothing else"))
    return None


def apply_create(e: Entry, s: State) -> None:
    # ``dept`` is None for a dossier created before creations named it: no liaison updates it then.
    s["dossiers"][e["obj"]] = {"number": e["number"], "destroyed": False,
                               "dept": (e.get("subject") or {}).get("dept")}
    s["numbers"][e["number"]] = e["obj"]


def bind_member_add(e: Entry, s: State) -> str | None:
    sub = e.get("subject") or {}
    if e.get("obj") in s["members"]:
        return Message(N_("adds member {obj}, who exists (names are never reused)"), obj=e.get('obj'))
    if not all(isinstance(sub.get(k), t) for k, t in (("key", str), ("roles", list), ("dept", str))):
        return Message(N_("adds a member without key, roles and dept"))
    if any(m["key"] == sub["key"] for m in s["members"].values()):
        return Message(N_("adds a key that already belongs to a member"))
    # Entries without a display name (every one written before display names existed) keep the
    # rule they were written under: ids are compared by the command that adds a member.
    return bind_display(e["obj"], sub["display_name"], s) if "display_name" in sub else None


def bind_member_rename(e: Entry, s: State) -> str | None:
    m = s["members"].get(e.get("obj") or "")
    if m is None or m["status"] != "active":
        return Message(N_("renames {obj!r}, who is not an active member"), obj=e.get("obj"))
    return bind_display(e["obj"], (e.get("subject") or {}).get("display_name"), s, only_display=True)


def apply_member_rename(e: Entry, s: State) -> None:
    m = s["members"][e["obj"]]
    m["display"] = e["subject"]["display_name"]
    m.pop("skel", None)
    skeletons(e["obj"], m)


def bind_display(ident: str, display: object, s: State, *, only_display: bool = False) -> str | None:
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
        others = sorted(i for i, m in s["members"].items() if i != ident and sk in skeletons(i, m))
        if others:
            return Message(N_("adds member {ident} whose name looks like that of {others}"), ident=ident,
                           others=", ".join(others))
    return None


def skeletons(ident: str, m: dict[str, Any]) -> list[str]:
    """The skeletons of a member's id and display name, kept in the state so that checking a new
    name costs one comparison per member, not two normalisations."""
    if "skel" not in m:
        m["skel"] = [names.skeleton(ident), *([names.skeleton(m["display"])] if m.get("display") else [])]
    return m["skel"]


def apply_member_add(e: Entry, s: State) -> None:
    sub = e["subject"]
    s["members"][e["obj"]] = {"key": sub["key"], "roles": sorted(sub["roles"]), "dept": sub["dept"],
                              "status": MemberStatus.ACTIVE, "since": e["seq"], "removed": None}
    if sub.get("display_name"):
        s["members"][e["obj"]]["display"] = sub["display_name"]
    skeletons(e["obj"], s["members"][e["obj"]])


def bind_member_remove(e: Entry, s: State) -> str | None:
    m = s["members"].get(e.get("obj") or "")
    if m is None or m["status"] != MemberStatus.ACTIVE:
        return Message(N_("removes {obj!r}, who is not an active member"), obj=e.get('obj'))
    if e["obj"] == e["member"]:
        return Message(N_("a member removes themself"))
    sub = e.get("subject")
    if sub is not None and not (isinstance(sub, dict) and set(sub) <= {"intake_recipient"}
                                and isinstance(sub.get("intake_recipient"), str)
                                and sub["intake_recipient"].startswith("age1")):
        return Message(N_("a removal's subject names only the new intake recipient"))
    return None


def apply_member_remove(e: Entry, s: State) -> None:
    m = s["members"][e["obj"]]
    m["status"], m["removed"] = MemberStatus.REMOVED, e["seq"]
    if e.get("subject"):  # the intake identity rotated with it: submissions go to the new key
        s["intake_recipient"] = e["subject"]["intake_recipient"]
    # Removal closes the leaver's grants in the same entry: a fact, whatever files say later.
    for g in s["grants"].values():
        if g["grantee"] == e["obj"] and g["closed"] is None:
            g["closed"] = GrantState.MEMBER_REMOVED


def bind_policy(e: Entry, s: State) -> str | None:
    want = f"policy/{s['policy_version'] + 1}.toml"
    if set(e.get("records", {})) != {"policy.toml", want}:
        return Message(N_("a policy update must write policy.toml and {want}"), want=want)
    return None  # the rings and supervisor rights are compared by authority, which reads the file


def request_right(e: Entry, s: State) -> str:
    r = s["requests"].get(e.get("obj") or "")
    return "request.approve-copy" if r and r["kind"] == "copy" else "request.approve-access"


def bind_request(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in s["requests"]:
        return Message(N_("files a request under a number that exists"))
    role = (e.get("subject") or {}).get("approver_role")
    if role is not None and (e["action"] != "request.access"
                             or "dept-head" not in s["members"][e["member"]]["roles"]):
        return Message(N_("names an approver role for a request that is not a department head's own consultation"))
    if not e.get("obj") and not e.get("number") and e["action"] == "request.access":
        return None  # a consultation by customer name: the grant resolves it to one dossier
    return live_dossier(e, s)


def apply_request(e: Entry, s: State) -> None:
    s["requests"][e["ref"]] = {"kind": e["action"].split(".")[1], "dossier": e.get("obj") or None,
                               "target": e.get("number") or "",
                               "by": e["member"], "dept": s["members"][e["member"]]["dept"], "seq": e["seq"],
                               "decision": None, "decided_by": None, "used": False, "grant": None,
                               "approver_role": (e.get("subject") or {}).get("approver_role")}


def bind_decision(e: Entry, s: State) -> str | None:
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


def apply_decision(e: Entry, s: State) -> None:
    r = s["requests"][e["obj"]]
    r["decision"] = RequestState.APPROVED if e["action"] == "request.approve" else RequestState.DENIED
    r["decided_by"] = e["member"]


def bind_use(e: Entry, s: State) -> str | None:
    r = s["requests"].get(e.get("obj") or "")
    if r is None or r["kind"] != "copy" or r["decision"] != "approved" or r["used"] or r["by"] != e["member"]:
        return Message(N_("uses {obj!r}, which is not an unused copy approval of {member}"), obj=e.get('obj'), member=e['member'])
    return None


def bind_grant(e: Entry, s: State) -> str | None:
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


def apply_grant(e: Entry, s: State) -> None:
    r = s["requests"][e["obj"]]
    r["grant"] = e["ref"]
    dossier = r["dossier"]
    if dossier is None:
        dossier = s["numbers"][e["number"].split("/")[0]]
        r["resolved"] = {"dossier": dossier, "number": e["number"], "by": e["member"]}
    s["grants"][e["ref"]] = {"request": e["obj"], "dossier": dossier, "grantee": r["by"], "by": e["member"],
                             "seq": e["seq"], "closed": None}


def bind_close(e: Entry, s: State) -> str | None:
    g = s["grants"].get(e.get("obj") or "")
    if g is None or g["closed"] is not None:
        return Message(N_("closes {obj!r}, which is not an open grant"), obj=e.get('obj'))
    return None


def bind_reissue(e: Entry, s: State) -> str | None:
    g = s["grants"].get(e.get("obj") or "")
    if g is None or g["closed"] is not None:
        return Message(N_("re-issues the key release of {obj!r}, which is not an open grant"), obj=e.get('obj'))
    return None


def apply_close(e: Entry, s: State) -> None:
    s["grants"][e["obj"]]["closed"] = GrantState.REVOKED if e["action"] == "grant.revoke" else GrantState.EXPIRED_SWEPT


def bind_intake(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in s["intake"]:
        return Message(N_("decides a submission twice"))
    return live_dossier(e, s) if e["action"] == "intake.accept" else None


def apply_intake(e: Entry, s: State) -> None:
    s["intake"][e["ref"]] = e["action"].split(".")[1]


def bind_review(e: Entry, s: State) -> str | None:
    return live_dossier(e, s)


# Only the archive department lends, takes back and counts paper originals [R-3.2.3].
ARCHIVE_ROLES = frozenset({"archivist", ROOT_ROLE})


def archive_dept(e: Entry, s: State) -> str | None:
    if not ARCHIVE_ROLES & set(s["members"][e["member"]]["roles"]):
        return Message(N_("{member} does not work in the archive, which keeps the paper originals"), member=e['member'])
    return None


def loans(s: State) -> dict[str, Any]:
    return s.setdefault("loans", {})  # the state of a vault migrated before loans were carried has none


def bind_paper_lend(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in loans(s):
        return Message(N_("lends under a loan number that exists"))
    return archive_dept(e, s) or live_dossier(e, s)


def bind_paper_return(e: Entry, s: State) -> str | None:
    loan = loans(s).get(e.get("ref") or "")
    if loan is None or loan["returned"] or loan["dossier"] != e.get("obj"):
        return Message(N_("returns {loan!r}, which is not an open loan of dossier {dossier}"), loan=e.get('ref'), dossier=e.get('obj'))
    # The paper outlives a destruction: it comes back to a destroyed dossier, whose manifest is not written.
    writes_manifest = any(p.startswith("dossiers/") for p in e.get("records") or {})
    return archive_dept(e, s) or (live_dossier(e, s) if writes_manifest else dossier_of(e, s))


# A whole-vault disaster-recovery export: two supervisors, told apart by the entries' signers [R-3.3.1].
def supervisor(e: Entry, s: State) -> str | None:
    if ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return Message(N_("{member} is not a supervisor: a whole-vault export needs two"), member=e['member'])
    return None


def recoveries(s: State) -> dict[str, Any]:
    return s.setdefault("recoveries", {})  # a state replayed before these entries existed has none


def bind_recovery_request(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e.get("obj") != e["ref"] or e["ref"] in recoveries(s):
        return Message(N_("asks for a recovery export under a number that exists"))
    return supervisor(e, s)


def apply_recovery_request(e: Entry, s: State) -> None:
    recoveries(s)[e["ref"]] = {"by": e["member"], "approved_by": None, "done": False}


def bind_recovery_approve(e: Entry, s: State) -> str | None:
    r = recoveries(s).get(e.get("obj") or "")
    if r is None or r["approved_by"] is not None or r["done"]:
        return Message(N_("approves {obj!r}, which is not a recovery export waiting for its second approval"),
                       obj=e.get('obj'))
    if r["by"] == e["member"]:
        return Message(N_("the second approval of a recovery export is by another supervisor than the first"))
    return supervisor(e, s)


def bind_recovery_export(e: Entry, s: State) -> str | None:
    r = recoveries(s).get(e.get("obj") or "")
    if r is None or r["approved_by"] is None or r["done"]:
        return Message(N_("writes {obj!r}, which is not an approved, unwritten recovery export"), obj=e.get('obj'))
    if e["member"] not in (r["by"], r["approved_by"]):
        return Message(N_("a recovery export is written by one of the two supervisors who approved it"))
    return supervisor(e, s)
