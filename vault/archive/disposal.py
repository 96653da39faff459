"""The trust table's bindings of legal holds and destructions (the disposal of records): what makes such an entry count, and what it changes.

As in ``bindings``: each ``bind_*`` returns why an entry counts for nothing (or None), each
``apply_*`` changes the replayed state once it counts.
"""

from __future__ import annotations

from vault.archive.bindings import ROOT_ROLE, Entry, State, live_dossier
from vault.archive.states import DestructionState, GrantState
from vault.i18n import Message, N_


def bind_hold_add(e: Entry, s: State) -> str | None:
    return live_dossier(e, s) or (Message(N_("dossier {obj} is already held"), obj=e['obj']) if e["obj"] in s["holds"] else None)


def bind_hold_remove(e: Entry, s: State) -> str | None:
    if e.get("obj") not in s["holds"]:
        return Message(N_("lifts a hold on {obj!r} that is not in force"), obj=e.get('obj'))
    # Lifting frees a dossier for destruction: the rank that approves one [R-3.3.2].
    if ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return Message(N_("{member} is not a supervisor, who lifts holds"), member=e['member'])
    return None


def apply_hold_add(e: Entry, s: State) -> None:
    # Who placed it and when, by the entry: its lift must say so (``holds.lifts``).
    s["holds"][e["obj"]] = [e["seq"], e["member"], e["at"]]


def apply_hold_remove(e: Entry, s: State) -> None:
    placed = s["holds"].pop(e["obj"])
    lifted = s.setdefault("lifted", {})  # (a state from before lifts were kept has none)
    for rel in e.get("records") or {}:
        if rel.startswith("holds/lifted/") and isinstance(placed, list):  # (a hold version 1 placed: 0)
            lifted[rel] = placed


def bind_destroy_request(e: Entry, s: State) -> str | None:
    if not e.get("ref") or e["ref"] in s["destructions"]:
        return Message(N_("files a destruction under a number that exists"))
    return live_dossier(e, s)


def apply_destroy_request(e: Entry, s: State) -> None:
    s["destructions"][e["ref"]] = {"dossier": e["obj"], "target": e["number"], "by": e["member"],
                                   "state": DestructionState.REQUESTED, "approved_by": None, "seq": e["seq"]}


def bind_destroy_approve(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != DestructionState.REQUESTED:
        return Message(N_("approves {obj!r}, which is not a pending destruction"), obj=e.get('obj'))
    if e["member"] == d["by"] or ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return Message(N_("a destruction is approved by a supervisor other than its requester"))
    return None


def apply_destroy_approve(e: Entry, s: State) -> None:
    d = s["destructions"][e["obj"]]
    d["state"], d["approved_by"] = DestructionState.APPROVED, e["member"]


def bind_destroy_close(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] not in (DestructionState.REQUESTED, DestructionState.APPROVED):
        return Message(N_("closes {obj!r}, which is not a destruction that has not started"), obj=e.get('obj'))
    sup = ROOT_ROLE in s["members"][e["member"]]["roles"]
    if e["action"] == "destroy.cancel" and not (sup or e["member"] == d["by"]):
        return Message(N_("a destruction is cancelled by its requester or a supervisor"))
    if e["action"] == "destroy.deny" and not (sup and e["member"] != d["by"]):
        return Message(N_("a destruction is denied by a supervisor other than its requester"))
    return None


def apply_destroy_close(e: Entry, s: State) -> None:
    s["destructions"][e["obj"]]["state"] = (DestructionState.CANCELLED if e["action"] == "destroy.cancel"
                                            else DestructionState.DENIED)


def bind_destroy_start(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != DestructionState.APPROVED:
        return Message(N_("starts {obj!r}, which is not an approved destruction"), obj=e.get('obj'))
    if d["dossier"] in s["holds"]:
        return Message(N_("starts a destruction of a dossier under a legal hold"))
    return None


def apply_destroy_start(e: Entry, s: State) -> None:
    d = s["destructions"][e["obj"]]
    d["state"], d["executed_by"], d["certificate"] = DestructionState.EXECUTING, e["member"], None


def bind_destroy_step(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] not in (DestructionState.EXECUTING, DestructionState.EXECUTED):
        return Message(N_("records a step of {obj!r}, which is not being executed"), obj=e.get('obj'))
    return None


def bind_destroy_execute(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != DestructionState.EXECUTING:
        return Message(N_("executes {obj!r}, which is not an approved destruction whose execution started"), obj=e.get('obj'))
    if d["dossier"] in s["holds"]:
        return Message(N_("executes a destruction of a dossier under a legal hold"))
    for p in e.get("records", {}):
        if p != f"dossiers/{d['dossier']}/manifest.toml":
            return Message(N_("writes {p}, outside the dossier the approved request names"), p=p)
    return None


def apply_destroy_execute(e: Entry, s: State) -> None:
    d = s["destructions"][e["obj"]]
    d["state"] = DestructionState.EXECUTED
    if "/" not in d["target"]:
        s["dossiers"][d["dossier"]]["destroyed"] = True
        for g in s["grants"].values():
            if g["dossier"] == d["dossier"] and g["closed"] is None:
                g["closed"] = GrantState.DESTROYED


def bind_certify(e: Entry, s: State) -> str | None:
    d = s["destructions"].get(e.get("obj") or "")
    if d is None or d["state"] != "executed" or d.get("certificate") is not None:
        return Message(N_("certifies {obj!r}, which is not an executed, uncertified destruction"), obj=e.get('obj'))
    if d["executed_by"] != e["member"] and ROOT_ROLE not in s["members"][e["member"]]["roles"]:
        return Message(N_("a certificate is signed by the member who executed the destruction, or a supervisor"))
    return None
