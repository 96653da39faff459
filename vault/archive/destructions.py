"""Destruction records read through the history, and the execution journal every step writes [R-3.3.2].

The procedures are ``vault.office.destruction`` (request, approval) and ``vault.office.destroyexec``
(execution); what they share with ``vault check`` and the commands that list and
show destructions lives here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from vault.archive.manifestrecord import Document, Manifest
from vault.archive import authority, committed
from vault.archive.manifests import load_manifest, resolve
from vault.archive.destructionrecords import Destruction, DestructionApproval, DestructionClosed
from vault.archive.states import DestructionState, DossierStatus
from vault.errors import ConflictError, IntegrityError, NotFoundError
from vault.i18n import N_
from vault.store import ids, records

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

def rel(no: str, suffix: str = "") -> str:
    return f"destructions/{no}{suffix}.toml"


_SCHEMAS = {".certificate": "certificate", ".execution": "execution"}


def fact(v: Vault, no: str) -> dict[str, Any]:
    ids.destruction_no(no)
    f = authority.state(v)["destructions"].get(no)
    if f is None:
        raise NotFoundError(N_("no destruction {no}"), no=no)
    return f


def has(v: Vault, no: str, suffix: str) -> bool:
    """Whether the history committed this destruction's record ``suffix`` (a file alone counts for nothing)."""
    return committed.exists(v, rel(no, suffix))


def _committed(v: Vault, no: str, suffix: str) -> None:
    fact(v, no)
    if suffix and not has(v, no, suffix):
        raise NotFoundError(N_("no destruction {no} {record}"), no=no, record=suffix.strip('.'))


def load(v: Vault, no: str, suffix: str) -> dict[str, Any]:
    """A committed destruction record as a table: the execution journal or the certificate."""
    _committed(v, no, suffix)
    return committed.load(v, rel(no, suffix), schema=_SCHEMAS[suffix])


def request(v: Vault, no: str) -> Destruction:
    """The committed destruction request, which must say what its history entry says."""
    f = fact(v, no)
    rec = committed.load_record(v, rel(no), Destruction)
    if (rec.number, rec.dossier, rec.target, rec.requested_by) != (no, f["dossier"], f["target"], f["by"]):
        raise IntegrityError(N_("destructions/{no}.toml: does not say what its history entry says"), no=no)
    return rec


def request_sha256(req: Destruction) -> str:
    """What an approval or a closing names the request by."""
    return hashlib.sha256(records.canonical(req.to_record())).hexdigest()


def approval(v: Vault, no: str) -> DestructionApproval:
    """The committed approval of destruction ``no`` (NotFoundError if there is none)."""
    _committed(v, no, ".approval")
    return committed.load_record(v, rel(no, ".approval"), DestructionApproval)


def closed(v: Vault, no: str, req: Destruction) -> DestructionClosed | None:
    """The cancellation or denial of ``no`` the history committed, if any (who may close is the
    history's rule: a record written straight into the directory closes nothing)."""
    if fact(v, no)["state"] not in ("cancelled", "denied"):
        return None
    _committed(v, no, ".closed")
    rec = committed.load_record(v, rel(no, ".closed"), DestructionClosed)
    if rec.destruction != no or rec.request_sha256 != request_sha256(req) \
            or rec.by != committed.signer_of(v, rel(no, ".closed")):
        raise IntegrityError(N_("destructions/{no}.closed.toml: does not close this request"), no=no)
    return rec


def refuse_closed(v: Vault, no: str) -> None:
    rec = closed(v, no, request(v, no))
    if rec is not None:
        raise ConflictError(N_("destruction {no} was cancelled by {by}") if rec.outcome == "cancelled"
                            else N_("destruction {no} was denied by {by}"),
                            hint=N_("file a new destruction request if it is still wanted"), no=no, by=rec.by)


#: The steps of an execution, in order. Each is idempotent: run again, it finds its work done.
STEPS = ("unindex", "keys", "ciphertext", "manifest", "offsite", "certificate", "audit")

def journal(v: Vault, no: str, req: Destruction) -> dict[str, Any] | None:
    """The execution journal of ``no`` the history committed (by members who may execute), about this request."""
    if not has(v, no, ".execution"):
        return None
    what = f"destructions/{no}.execution.toml"
    run = load(v, no, ".execution")
    if run.get("destruction") != no or run.get("dossier") != req.dossier or run.get("target") != req.target:
        raise IntegrityError(N_("{what}: belongs to another destruction"), what=what)
    return run


def record_journal(actor: Actor, run: dict[str, Any], action: str = "destroy.step") -> dict[str, Any]:
    """Sign the journal and commit it: each step is one history entry."""
    no = run["destruction"]
    signed = actor.sign({k: x for k, x in run.items() if k != "signature"})
    actor.commit(action, {rel(no, ".execution"): records.dump_toml(signed)}, number=run["target"], ref=no, obj=no)
    return signed


def unfinished(v: Vault) -> list[dict[str, Any]]:
    """Executions that started and did not finish: ``{"number", "target", "started_at", "next"}``."""
    out = []
    for no, f in sorted(authority.state(v)["destructions"].items()):
        if f["state"] not in ("executing", "executed"):
            continue
        run = journal(v, no, request(v, no))
        if run is not None and "audit" not in run["steps"]:
            nxt = next(s for s in STEPS if s not in run["steps"])
            out.append({"number": no, "target": run["target"], "started_at": run["started_at"],
                        "started_by": run["started_by"], "next": nxt})
    return out


def certificate(v: Vault, no: str) -> dict[str, Any]:
    """The certificate of an executed destruction: the file the history wrote for this number,
    naming this destruction and the dossier its approved request names."""
    f = fact(v, no)
    if f.get("certificate") is None:
        raise NotFoundError(N_("no destruction {no} certificate"), no=no)
    cert = load(v, no, ".certificate")
    number = authority.state(v)["dossiers"][f["dossier"]]["number"]
    if cert.get("destruction") != no or cert.get("dossier_number") != number:
        raise IntegrityError(N_("destructions/{no}.certificate.toml: certifies another destruction"), no=no)
    return cert


def list_destructions(v: Vault) -> list[dict[str, Any]]:
    """Every destruction with its state from the history (an execution is "executing" until its
    journal records the last step)."""
    rows = []
    for no, f in sorted(authority.state(v)["destructions"].items()):
        req = request(v, no)
        state = f["state"]
        if state in (DestructionState.EXECUTING, DestructionState.EXECUTED):
            run = journal(v, no, req)
            state = (DestructionState.EXECUTING if run is not None and "audit" not in run["steps"]
                     else DestructionState.EXECUTED)
        if state in (DestructionState.CANCELLED, DestructionState.DENIED):
            closed(v, no, req)
        rows.append({"number": no, "target": f["target"], "requested_by": f["by"], "state": state})
    return rows


def destroyed_by(v: Vault, number: str) -> str | None:
    """The executed destruction that destroyed dossier ``number`` as a whole, if any."""
    for r in list_destructions(v):
        if r["target"] == number.split("/")[0] and r["state"] == DestructionState.EXECUTED:
            return r["number"]
    return None


def targets(v: Vault, target: str, dossier_id: str | None = None) -> tuple[Manifest, list[Document]]:
    """The manifest and the live documents a target (NO or DOCNO) covers; with ``dossier_id`` (a
    request's permanent id) the target is never re-resolved through the index."""
    m = load_manifest(v, dossier_id or resolve(v, target))
    if m.number != target.split("/")[0]:
        raise IntegrityError(N_("destruction target {target} is not in dossier {number}"), target=target, number=m.number)
    if m.status == DossierStatus.DESTROYED:
        raise ConflictError(N_("dossier {number} has already been destroyed"), number=m.number)
    live = [d for d in m.documents if not d.is_destroyed]
    if "/" in target:
        live = [d for d in live if d.number == target]
        if not live:
            raise NotFoundError(N_("no live document {target}"), target=target)
    return m, live
