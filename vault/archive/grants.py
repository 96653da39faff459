"""Requests and grants as the history records them: their states, the key releases of active grants, and opening a dossier's keys [R-3.4.1, R-3.4.2]."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault import clock
from vault.archive import authority, committed, keyfiles, members, recordtimes
from vault.archive.accessrecords import Decision, Grant, Request, Resolution
from vault.archive.states import GrantState, RequestState
from vault.crypto import age
from vault.errors import InputError, IntegrityError, NotFoundError, PermissionDeniedError
from vault.i18n import N_
from vault.store import ids, make_dir, records
from vault.store.identity import PublicKey
from vault.store.keytable import KeyTable, encrypt_key_table, read_key_table

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


#: The longest a grant lasts: ``vault grant --hours`` allows no more, and a grant record lasting
#: longer (written with the library) is an integrity error (``recordtimes``).
MAX_GRANT_HOURS = 24 * 30

#: How long a copy approval may be used after the history entry that approved it [R-3.4.2]: as long
#: as the longest grant. After that an export under it is refused and the approval stays unused.
COPY_APPROVAL_DAYS = MAX_GRANT_HOURS // 24


def _req_rel(no: str, suffix: str = "") -> str:
    return f"requests/{no}{suffix}.toml"


def _grant_rel(no: str, suffix: str = "") -> str:
    return f"grants/{no}{suffix}.toml"


def grant_key_path(v: Vault, dossier_id: str, grant_no: str) -> Path:
    return v.root / grant_key_rel(dossier_id, grant_no)


def grant_key_rel(dossier_id: str, grant_no: str) -> str:
    return f"keys/grants/{dossier_id}.{grant_no}.age"


def _fact(v: Vault, table: str, no: str, what: str) -> dict[str, Any]:
    f = authority.state(v)[table].get(no)
    if f is None:
        raise NotFoundError(N_("no {what} {no}"), what=what, no=no)
    return f


def _request(v: Vault, no: str) -> tuple[dict[str, Any], Request]:
    """(the history's facts, the committed request record) — the record must say what the history says."""
    fact = _fact(v, "requests", no, "request")
    rec = committed.load_record(v, _req_rel(no), Request)
    if (rec.number, rec.kind, rec.dossier or None, rec.requester,
            rec.target or None) != (no, fact["kind"], fact["dossier"], fact["by"], fact["target"] or None):
        raise IntegrityError(N_("requests/{no}.toml: does not say what its history entry says"), no=no)
    return fact, rec


def status(v: Vault, no: str, *, grants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A request with its state from the history: pending, approved, denied, granted, used.

    Decisions, uses and grants are facts of the history: deleting their files reverts nothing.
    """
    ids.request_no(no)
    fact, req = _request(v, no)
    out: dict[str, Any] = {"number": req.number, "kind": req.kind, "target": req.target, "requester": req.requester,
                           "created_at": req.created_at}
    if req.approver_role is not None:
        out["approver_role"] = req.approver_role
    out["dept"] = fact["dept"]  # the requester's member record's, never a typed field
    out["state"] = RequestState(fact["decision"] or RequestState.PENDING)
    if req.by_name:
        out["by_name"] = True
        if fact.get("resolved"):
            out.update(target=fact["resolved"]["number"], resolved_by=fact["resolved"]["by"])
    if fact["decision"]:
        out.update(decided_by=fact["decided_by"], decided_at=decision(v, no).at)
    if fact["used"]:
        out["state"] = RequestState.USED
    if fact["grant"]:
        out.update(state=RequestState.GRANTED, grant=fact["grant"])
    return out


def request_record(v: Vault, no: str) -> Request:
    """A request as its requester signed it, checked against the history."""
    return _request(v, no)[1]


def decision(v: Vault, no: str) -> Decision:
    """The committed decision on request ``no`` (the history says there is one), checked against the
    history: it decides this request as its entry did, signed by the member whose entry decided it."""
    fact, req = _request(v, no)
    what = _req_rel(no, ".decision")
    dec = committed.load_record(v, what, Decision)
    if (dec.request, dec.request_sha256, dec.decision, dec.by, dec.signature.by) \
            != (no, _digest(req), fact["decision"], fact["decided_by"], fact["decided_by"]):
        raise IntegrityError(N_("{what}: does not say what its history entry says"), what=what)
    members.verify_by_member(v, dec.to_record(), what=what)
    return dec


def resolution(v: Vault, req: Request) -> Resolution | None:
    """The granting archivist's resolution of a request by customer name (committed with the grant)."""
    res = _fact(v, "requests", req.number, "request").get("resolved")
    return None if res is None else committed.load_record(v, _req_rel(req.number, ".resolution"), Resolution)


def customer_name(actor: Actor, no: str) -> str:
    """The customer name a request by name gives, for a member it was sealed to (the archive ring,
    the requester's department heads)."""
    req = _request(actor.vault, no)[1]
    if req.customer is None:
        raise InputError(N_("request {no} names an archive number, not a customer"), no=no)
    name = members.open_text(actor, req.customer, what=_req_rel(no))
    if name is None:
        raise PermissionDeniedError(N_("the customer name in {no} is sealed to the archive and the department heads"), no=no)
    return name


def texts(v: Vault, no: str, actor: Actor | None = None) -> dict[str, Any]:
    """A request's sealed texts — its ``purpose`` and a denial's ``reason`` — for a member they were
    sealed to (the requester, the department heads, the deciders, the archive ring); see
    ``members.reveal``. ``actor`` None (no identity given) reveals nothing."""
    fact, req = _request(v, no)
    found = {"purpose": (req.purpose, f"requests/{no}.toml purpose")}
    if fact["decision"]:
        dec = decision(v, no)
        if dec.reason is not None:
            found["reason"] = (dec.reason, f"requests/{no}.decision.toml reason")
    out: dict[str, Any] = {}
    members.reveal(actor, found, out, number=req.target or None, ref=no)
    return out


def _digest(rec: dict[str, Any] | Request | Decision) -> str:
    """What a later record names an earlier one by: SHA-256 of its canonical bytes."""
    return hashlib.sha256(records.canonical(rec if isinstance(rec, dict) else rec.to_record())).hexdigest()


def list_requests(v: Vault) -> list[dict[str, Any]]:
    return [status(v, n) for n in sorted(authority.state(v)["requests"])]


def _release(table: KeyTable, grantee: dict[str, Any]) -> bytes | None:
    """A key release: the table encrypted to the grantee alone, or None for a member who is not
    active (no key release is ever written to one)."""
    if grantee["status"] != "active":
        return None
    return encrypt_key_table(table, [age.parse_recipient(PublicKey.parse(grantee["key"]).recipient)])


def _write_grant_key(v: Vault, rec: dict[str, Any], table: KeyTable, mem: dict) -> None:
    data = _release(table, mem[rec["grantee"]])
    if data is None:
        return
    make_dir(grant_key_path(v, rec["dossier"], rec["number"]).parent, parents=True)
    # Bound to the history like the table it copies (``keyfiles``): committed by the caller's entry,
    # which writes and syncs it with its other files.
    keyfiles.stage(v, grant_key_rel(rec["dossier"], rec["number"]), data)


def list_grants(v: Vault) -> list[dict[str, Any]]:
    """Every grant with its state from the history: active, expired (until swept), or how it closed."""
    out = []
    now = v.clock.stamp()
    st = authority.state(v)
    for gno, fact in sorted(st["grants"].items()):
        g = committed.load_record(v, _grant_rel(gno), Grant)
        # The number shown is the one the request names (or the granting archivist resolved a name to).
        req = st["requests"].get(fact["request"]) or {}
        target = (req.get("resolved") or {}).get("number") or req.get("target")
        if (g.number, g.request, g.dossier, g.grantee, g.target) != (gno, fact["request"], fact["dossier"],
                                                                       fact["grantee"], target):
            raise IntegrityError(N_("grants/{gno}.toml: does not say what its history entry says"), gno=gno)
        recordtimes.check(v, _grant_rel(gno), g.granted_at, g.expires_at, dt.timedelta(hours=MAX_GRANT_HOURS))
        state = GrantState(fact["closed"] or (GrantState.ACTIVE if now < g.expires_at else GrantState.EXPIRED))
        out.append({"number": g.number, "request": g.request, "dossier": g.dossier, "target": g.target,
                    "grantee": g.grantee, "granted_at": g.granted_at, "expires_at": g.expires_at, "state": state})
    return out


def missing_releases(v: Vault) -> list[dict[str, Any]]:
    """Active grants whose key release the history does not hold: a restored vault (a restore drops
    the releases no backup holds, in its entry). The grantee reads nothing until it is re-issued
    (one deleted behind the history's back is tampering, which ``vault check`` names instead)."""
    mem = members.all_members(v)
    return [g for g in list_grants(v) if g["state"] == GrantState.ACTIVE and mem[g["grantee"]]["status"] == "active"
            and not keyfiles.exists(v, grant_key_rel(g["dossier"], g["number"]))]


def reissue_releases(actor: Actor, only: str | None = None) -> list[str]:
    """Write the key release of every active grant that has none (or only of grant ``only``), each
    committed by its own ``grant.reissue`` entry, which names it by hash (``keyfiles``); call under
    the exclusive lock with a member who can open the key tables. Returns the grants."""
    v = actor.vault
    done = []
    mem = members.all_members(v)
    for g in missing_releases(v):
        if only is None or g["number"] == only:
            rel = f"keys/{g['dossier']}.age"
            table = read_key_table(v.root / rel, actor.read_identities(), dossier=g["dossier"], data=keyfiles.read(v, rel))
            _write_grant_key(v, g, table, mem)
            actor.commit("grant.reissue", {}, number=g["target"], obj=g["number"])  # names it by hash
            done.append(g["number"])
    return done


def active_grant(v: Vault, dossier_id: str, member: str) -> dict[str, Any] | None:
    for g in list_grants(v):
        if g["dossier"] == dossier_id and g["grantee"] == member and g["state"] == GrantState.ACTIVE:
            return g
    return None


def key_files(actor: Actor, dossier_id: str, table: KeyTable, *, recipients: list | None = None,
              active: list | None = None) -> dict[str, bytes]:
    """A dossier's changed key table (for the archive ring) and the key release of every active
    grant on it (to its grantee alone), for the commit that records the change to stage with its
    entry: an interruption before the entry changes none of them, one after it leaves them for the
    recovery to put in place (FORMAT §18.5). ``recipients`` and ``active`` (the ring recipients and
    ``list_grants``) may be passed in by a caller staging many tables under one lock."""
    v = actor.vault
    out: dict[str, bytes] = {f"keys/{dossier_id}.age": encrypt_key_table(
        table, recipients if recipients is not None else members.ring_recipients(v))}
    return {**out, **_releases(v, dossier_id, table, active)}


def _releases(v: Vault, dossier_id: str, table: KeyTable, active: list | None) -> dict[str, bytes]:
    """The key release of every active grant on the dossier (never for a grant the history closed,
    nor to a member who is not active)."""
    if active is None:
        active = list_grants(v)
    grants_ = [g for g in active if g["dossier"] == dossier_id and g["state"] == GrantState.ACTIVE]
    out: dict[str, bytes] = {}
    if grants_:
        mem = members.all_members(v)
        for g in grants_:
            data = _release(table, mem[g["grantee"]])
            if data is not None:
                out[grant_key_rel(dossier_id, g["number"])] = data
    return out


def save_keys(actor: Actor, dossier_id: str, table: KeyTable, *, recipients: list | None = None,
              active: list | None = None) -> None:
    """Stage a dossier's changed key table for the archive ring and re-issue every active grant's key
    release (``key_files``): the one way a changed table is saved, so no grantee keeps an outdated
    copy. The files are staged (``keyfiles``): the command's next commit writes, syncs and names them.
    ``recipients`` and ``active`` (the ring recipients and ``list_grants``) may be passed in by a
    caller saving many tables under one lock."""
    for rel, data in key_files(actor, dossier_id, table, recipients=recipients, active=active).items():
        keyfiles.stage(actor.vault, rel, data)


def refresh_grant_keys(actor: Actor, dossier_id: str, table: KeyTable, *, active: list | None = None) -> None:
    """Stage the key release of every active grant on a dossier again (its table unchanged)."""
    for rel, data in _releases(actor.vault, dossier_id, table, active).items():
        keyfiles.stage(actor.vault, rel, data)


def open_key_table(actor: Actor, dossier_id: str, *, number: str) -> KeyTable:
    """The dossier's key table for this member: through the archive ring, or an active grant."""
    v = actor.vault
    if v.policy.may(actor.roles, "dossier.read"):
        rel = f"keys/{dossier_id}.age"
        return read_key_table(v.root / rel, actor.read_identities(), dossier=dossier_id, data=keyfiles.read(v, rel))
    g = active_grant(v, dossier_id, actor.name)
    if g is None:
        actor.audit("dossier.read", outcome="refused", number=number)
        raise PermissionDeniedError(
            N_("you have no active grant for dossier {number}"),
            param="access_request", number=number.split('/')[0])
    rel = grant_key_rel(dossier_id, g["number"])
    return read_key_table(v.root / rel, [actor.identity.age_identity()], data=keyfiles.read(v, rel),
                          dossier=dossier_id)


class CopyApprovalExpired(PermissionDeniedError):
    """The member's only copy approvals for a target were decided more than ``COPY_APPROVAL_DAYS`` ago."""


def approved_entry(v: Vault, no: str) -> tuple[int, str]:
    """(entry number, entry time) of the history entry that decided request ``no``: what a copy
    approval covers (the documents written by entries up to it) and when its time runs from [R-3.4.2].
    A decision ``vault migrate`` adopted keeps the time version 1 gave it (its entry is the migration's)."""
    rel = _req_rel(no, ".decision")
    ent = authority.state(v)["files"][rel]
    return ent[1], decision(v, no).at if committed.adopted(v, rel) else ent[3]


def copy_approval_ends(v: Vault, no: str) -> dt.datetime:
    """When copy approval ``no`` can no longer be used: ``COPY_APPROVAL_DAYS`` after its decision's entry."""
    return clock.parse_stamp(approved_entry(v, no)[1]) + dt.timedelta(days=COPY_APPROVAL_DAYS)


def consume_copy_approval(actor: Actor, target: str, *, action: str = "doc.export") -> str:
    """Use up the approved copy request of this member for ``target``; returns its number [R-3.4.2].

    An approval is used only within ``COPY_APPROVAL_DAYS`` of the history entry that approved it (by
    the vault handle's clock); one past that is left unused, and if no other is usable the refusal names it."""
    v = actor.vault
    now = actor.clock.now()
    expired: str | None = None
    with v.lock(exclusive=True):
        for no, f in sorted(authority.state(v)["requests"].items()):
            if f["kind"] == "copy" and f["by"] == actor.name and f["target"] == target \
                    and f["decision"] == "approved" and not f["used"]:
                if now >= copy_approval_ends(v, no):
                    expired = no
                    continue
                rec = actor.sign({"format": 1, "request": no, "at": actor.clock.stamp()})
                actor.commit("request.use", {_req_rel(no, ".used"): records.dump_toml(rec)}, number=target,
                             ref=no, obj=no)
                return no
    actor.audit(action, outcome="refused", number=target)
    if expired is not None:
        raise CopyApprovalExpired(
            N_("the approval of copy request {no} for {target} has expired (it is used within {days} days)"),
            hint=N_("file a new copy request ('vault request copy {target} --purpose …') and have it approved"),
            no=expired, target=target, days=COPY_APPROVAL_DAYS)
    raise PermissionDeniedError(N_("no approved copy request of yours for {target}"),
                                param="copy_request", target=target)
