"""Periodic review of dossiers: intervals per class, signed review records, and what is due [R-3.5.1].

A dossier's last review is its ``created`` date until a review is recorded. Reviews are signed
records ``reviews/<dossier-id>/<seq>.toml`` (``schemas/review.schema.json``). A free-text note may
name the customer, so it is sealed under a new key in the dossier's own key table, like the profile:
whoever can read the dossier can read its notes, and destroying the dossier shreds them. A review with the
outcome ``needs-update`` restarts the interval but keeps the dossier listed until a later review
finds it ``verified``: the department has been told to act, and the list shows it has not yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from vault.archive.states import DossierStatus
from vault.archive import grants, manifests
from vault.archive.reviews import _dir, history, note_text
from vault.errors import ConflictError, InputError
from vault.store import make_dir, records
from vault.i18n import Message, N_
from vault.store.keytable import seal_field

if TYPE_CHECKING:
    from vault.archive.vault import Actor

OUTCOMES = ("verified", "needs-update")


def done(actor: Actor, number: str, outcome: str, note: str | None = None) -> dict[str, Any]:
    """Record that ``number`` was reviewed, ``verified`` or ``needs-update`` (which needs a note);
    returns the record without its sealed note."""
    actor.require("review.record", number=number)
    v = actor.vault
    if outcome not in OUTCOMES:
        raise InputError(N_("unknown review outcome {outcome!r}"), param="outcome", outcome=outcome)
    note = (note or "").strip()
    if outcome == "needs-update" and not note:
        raise InputError(N_("a review that asks for an update needs a note saying what"), param="note")
    dossier_id = manifests.resolve(v, number)
    with v.lock(exclusive=True):
        m = manifests.load_manifest(v, dossier_id)
        if m.status == DossierStatus.DESTROYED:
            actor.audit("review.record", outcome="refused", number=m.number)
            raise ConflictError(N_("dossier {number} has been destroyed"), hint=N_("nothing left to review"), number=m.number)
        seq = max((r["seq"] for r in history(v, dossier_id)), default=0) + 1
        rec: dict[str, Any] = {"format": 1, "dossier": dossier_id, "number": m.number, "seq": seq,
                               "at": actor.clock.stamp(), "by": actor.name, "outcome": outcome}
        files: dict[str, bytes | None] = {}
        table = None
        if note:
            # Free text may name the customer: sealed like the profile, so it is read with the
            # dossier's keys and crypto-shredded with them; table and record commit together.
            table = manifests.read_table(v, dossier_id, actor.read_identities())
            kid, sealed = seal_field(note.encode(), table)
            rec.update(note_key=kid, note=sealed)
            files.update(grants.key_files(actor, dossier_id, table))  # committed with the record
        signed = actor.sign(rec)
        records.validate(signed, "review", what=Message(N_("review {seq} of {number}"), seq=seq, number=m.number))
        d = _dir(v, dossier_id)
        make_dir(d, parents=True)
        files[f"reviews/{dossier_id}/{seq}.toml"] = records.dump_toml(signed)
        actor.commit("review.record", files, number=m.number, ref=f"review-{seq}", obj=dossier_id)
    return {k: rec[k] for k in ("number", "seq", "at", "by", "outcome")}


def read_note(actor: Actor, rec: Mapping[str, Any]) -> str | None:
    """The plaintext note of a review record, for a member whose keys open the dossier (audited)."""
    if "note" not in rec:
        return None
    if manifests.load_manifest(actor.vault, rec["dossier"]).status == DossierStatus.DESTROYED:
        raise ConflictError(N_("dossier {number} has been destroyed; its review notes went with its keys"), number=rec['number'])
    return note_text(actor, rec)
