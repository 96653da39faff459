"""Retention events: recording the events schedules count from, and closing dossiers [R-3.3.2]."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING


from vault.archive.manifestrecord import Reopening
from vault.archive.manifests import load_manifest, manifest_file, parse_record_date, resolve
from vault.errors import ConflictError, InputError
from vault.i18n import N_
from vault.archive.schedule import INTRINSIC_EVENTS, known_events
from vault.archive.states import DossierStatus

if TYPE_CHECKING:
    from vault.archive.vault import Actor


def record_event(actor: Actor, docno: str, event: str, date: str, *, force_date: bool = False) -> None:
    """Record that ``event`` happened for a document on ``date`` (e.g. contract fulfilled)."""
    actor.require("doc.add", number=docno)
    events = known_events()
    if event not in events or event in INTRINSIC_EVENTS:
        raise InputError(N_("unknown event {event!r}"),
                         hint=N_("events: {value}"), event=event, value=', '.join(e for e in events if e not in INTRINSIC_EVENTS))
    date = parse_record_date(date, today=actor.clock.today(), force=force_date)
    v = actor.vault
    with v.lock(exclusive=True):
        m = load_manifest(v, resolve(v, docno))
        if m.status == DossierStatus.DESTROYED:
            raise ConflictError(N_("dossier {number} has been destroyed"), number=m.number)
        doc = m.require_document(docno)
        m = replace(m.with_documents(replace(doc, events={**(doc.events or {}), event: date})), revision=m.revision + 1)
        actor.commit("doc.event", manifest_file(actor, m), number=docno, ref=event, obj=m.id, rev=m.revision)


def close_dossier(actor: Actor, number: str, date: str, *, force_date: bool = False) -> None:
    """Close a dossier: the business relationship it records is over; 'dossier-closed' schedules start."""
    actor.require("doc.add", number=number)
    date = parse_record_date(date, today=actor.clock.today(), force=force_date)
    v = actor.vault
    with v.lock(exclusive=True):
        m = load_manifest(v, resolve(v, number))
        if m.status != DossierStatus.OPEN:
            raise ConflictError(N_("dossier {number} is {status}"), number=m.number, status=m.status.value)
        m = replace(m, status=DossierStatus.CLOSED, closed=date, revision=m.revision + 1)
        actor.commit("dossier.close", manifest_file(actor, m), number=m.number, obj=m.id, rev=m.revision)


def reopen_dossier(actor: Actor, number: str) -> None:
    """Reopen a closed dossier (the relationship resumed): it takes documents again, and its
    'dossier-closed' schedules wait for the next closing. The cancelled closing date is kept."""
    actor.require("doc.add", number=number)
    v = actor.vault
    with v.lock(exclusive=True):
        m = load_manifest(v, resolve(v, number))
        if m.status != DossierStatus.CLOSED or m.closed is None:
            raise ConflictError(N_("dossier {number} is {status}, not closed"), number=m.number, status=m.status.value)
        again = Reopening(at=actor.clock.stamp(), by=actor.name, closed=m.closed)
        m = replace(m, reopened=(*(m.reopened or ()), again), closed=None, status=DossierStatus.OPEN,
                    revision=m.revision + 1)
        actor.commit("dossier.reopen", manifest_file(actor, m), number=m.number, obj=m.id, rev=m.revision)
