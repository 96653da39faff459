"""Placing and lifting legal holds: a held dossier is never destroyed, and backups never prune its data."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from vault import clock
from vault.archive import audit, authority, committed, members, recordtimes
from vault.archive.holdrecords import Hold, HoldLift
from vault.archive.holds import _rel, check_written, held_dossiers, verified_holds
from vault.archive.manifests import load_manifest, resolve
from vault.archive.states import DossierStatus
from vault.errors import ConflictError, FormatError, InputError, IntegrityError, NotFoundError, PermissionDeniedError
from vault.store import make_dir, records
from vault.i18n import Message, N_

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


def add(actor: Actor, number: str, reason: str) -> None:
    """Place a legal hold on a dossier (the reason is sealed to the archive ring)."""
    actor.require("hold.manage", number=number)
    if not reason.strip():
        raise InputError(N_("a hold needs a reason"), param="reason")
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        m = load_manifest(v, dossier_id)
        if "/" in number:  # a document's number holds its dossier, if the dossier has that document
            m.require_document(number)
        if m.status == DossierStatus.DESTROYED:
            raise ConflictError(N_("dossier {number} has been destroyed"), number=m.number)
        if dossier_id in held_dossiers(v):
            raise ConflictError(N_("dossier {number} is already on hold"), number=m.number)
        sealed = members.seal_text(v, reason)
        make_dir((v.root / "holds"))
        rec = actor.sign({"format": 1, "dossier": dossier_id, "number": m.number, "at": actor.clock.stamp(),
                          "by": actor.name, "reason": sealed})
        actor.commit("hold.add", {_rel(dossier_id): records.dump_toml(rec)}, number=m.number, obj=dossier_id)


def remove(actor: Actor, number: str, reason: str) -> str:
    """Lift the legal hold on a dossier: a supervisor, saying why (sealed to the archive ring).

    One history entry writes the signed lift record ``holds/lifted/<dossier-id>.<n>.toml`` and
    deletes the hold, so the two never disagree. Returns the lift record's name.
    """
    actor.require("hold.manage", number=number)
    if "supervisor" not in actor.roles:
        # Lifting frees a dossier for destruction: the same rank that approves a destruction.
        actor.audit("hold.remove", outcome="refused", number=number)
        raise PermissionDeniedError(N_("only a supervisor lifts a legal hold"), hint=N_("ask an archive supervisor"))
    if not reason.strip():
        raise InputError(N_("lifting a hold needs a reason"), param="reason")
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        if "/" in number:
            load_manifest(v, dossier_id).require_document(number)
        if dossier_id not in held_dossiers(v):
            raise NotFoundError(N_("dossier {number} is not on hold"), number=number)
        try:
            hold = committed.load_record(v, _rel(dossier_id), Hold)
            check_written(v, _rel(dossier_id), hold.to_record(), dossier_id)
            hold_sha = hashlib.sha256(records.canonical(hold.to_record())).hexdigest()
            placed = (hold.number, hold.at, hold.by)
        except IntegrityError:
            # The hold's file was deleted, changed behind the vault's back or says what its entry
            # does not (check names it): the hold is still the history's fact, and its entry says
            # when and by whom it was placed.
            h, seq, placer = committed.committed(v, _rel(dossier_id)) or ("0" * 64, 0, "")
            at = next((e["at"] for e in audit.entries(v) if e["seq"] == seq), actor.clock.stamp())
            placed, hold_sha = (load_manifest(v, dossier_id).number, at, placer), h or "0" * 64
        held_number, held_at, held_by = placed
        lifted = v.root / "holds" / "lifted"
        make_dir(lifted)
        n = 1 + max((int(q.name.split(".")[1]) for q in lifted.glob(f"{dossier_id}.*.toml")
                     if q.name.split(".")[1].isdigit()), default=0)
        rec = {"format": 1, "dossier": dossier_id, "number": held_number, "seq": n,
               "hold_at": held_at, "hold_by": held_by,
               "hold_sha256": hold_sha,
               "at": actor.clock.stamp(), "by": actor.name, "reason": members.seal_text(v, reason)}
        signed = actor.sign(rec)
        records.validate(signed, "holdlift", what=Message(N_("lift of the hold on {number}"), number=held_number))
        actor.commit("hold.remove", {f"holds/lifted/{dossier_id}.{n}.toml": records.dump_toml(signed),
                                     _rel(dossier_id): None}, number=number, obj=dossier_id, ref=f"lift-{n}")
    return f"{dossier_id}.{n}"


def list_holds(v: Vault, actor: Actor | None = None) -> list[dict[str, Any]]:
    """Holds in force; with ``actor``, each hold's reason where it was sealed to them (the ring)."""
    rows = []
    for dossier_id, rec in sorted(verified_holds(v).items()):
        row: dict[str, Any] = {"number": rec.number, "at": rec.at, "by": rec.by}
        members.reveal(actor, {"reason": (rec.reason, f"holds/{dossier_id}.toml reason")}, row,
                       number=rec.number, ref="hold")
        rows.append(row)
    return sorted(rows, key=lambda r: r["number"])


def _check_lifted(v: Vault, what: str, rec: HoldLift) -> None:
    """A lift names the hold it ended as the history placed it: ``hold_by`` the member who signed the
    hold's entry, ``hold_at`` at most ``recordtimes.STAMPED_BEFORE`` before that entry and never
    after. (A hold's bytes went with its lifting: ``hold_sha256`` is not checked; a hold version 1
    placed, or a lift ``vault migrate`` adopted, is not known to the history this way.)"""
    placed = authority.state(v).get("lifted", {}).get(what)
    if placed is None or committed.adopted(v, what):
        return
    _, by, at = placed
    try:
        placed_then = recordtimes.near(clock.parse_stamp(rec.hold_at), at)
    except ValueError:
        placed_then = False
    if rec.hold_by != by or not placed_then:
        raise IntegrityError(N_("{what}: says the hold it lifts was placed by {hold_by} at {hold_at}; its history entry "
                                "says by {by} at {at}"), hint=N_("run 'vault check'"), what=what, hold_by=rec.hold_by,
                             hold_at=rec.hold_at, by=by, at=at)


def lifts(v: Vault, actor: Actor | None = None) -> list[dict[str, Any]]:
    """Every lifted hold the history committed (a supervisor's hold.remove), oldest first; reasons as
    in ``list_holds``. A lift file no entry wrote is refused by ``committed.load``."""
    rows = []
    for what, (h, *_) in sorted(authority.state(v)["files"].items()):
        if h is None or not what.startswith("holds/lifted/"):
            continue
        p = v.root / what
        try:
            rec = committed.load_record(v, what, HoldLift)
        except FormatError as e:
            raise IntegrityError.from_error(e) from None
        if p.name != f"{rec.dossier}.{rec.seq}.toml" or rec.dossier not in authority.state(v)["dossiers"]:
            raise IntegrityError(N_("{what}: belongs to another place or signer"), what=what)
        check_written(v, what, rec.to_record(), rec.dossier)
        _check_lifted(v, what, rec)
        row: dict[str, Any] = {"number": rec.number, "hold_at": rec.hold_at, "hold_by": rec.hold_by, "at": rec.at,
                               "by": rec.by}
        members.reveal(actor, {"reason": (rec.reason, f"{what} reason")}, row, number=rec.number, ref="hold-lift")
        rows.append(row)
    return sorted(rows, key=lambda r: r["at"])
