"""``vault find``: customers by partial name, Chinese name, contact or number, with filters and paging [R-1.3.4].

The sealed index (``vault.archive.searchindex``) says which dossiers match; what is shown comes from each
dossier's signed manifest, and a row the manifest does not confirm (another profile version,
another number, destroyed) is never shown: the index narrows, the signed records decide.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields as dc_fields
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from vault.archive.states import DossierStatus
from vault.archive.manifestrecord import Manifest
from vault.archive import authority, completeness, members, searchindex, searchseal, searchwrite
from vault.archive import reviews
from vault.archive import manifests
from vault.archive import grants
from vault.errors import InputError, IntegrityError
from vault.i18n import N_
from vault.errors import ConflictError, NotFoundError
from vault.store.searchdb import CONTACT_FIELDS, NAME_FIELDS, Hit, fold, query_words

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

DEFAULT_LIMIT = 20
MAX_LIMIT = 10_000


@dataclass
class Filters:
    """Conditions on a dossier's cleartext facts (its manifest), combined with AND."""

    klass: str | None = None  # a class path prefix, whole segments
    customer_type: str | None = None
    business: str | None = None
    dept: str | None = None
    created_from: str | None = None  # YYYY-MM-DD, inclusive
    created_to: str | None = None
    status: str | None = None  # open | closed
    due: bool = False  # due for review (stale or waiting for an update)
    incomplete: bool = False

    def active(self) -> bool:
        return any(getattr(self, f.name) not in (None, False) for f in dc_fields(self))

    def keep(self, v: Vault, m: Manifest, present: list[str] | None, today: dt.date, mem: dict) -> bool:
        if self.klass and m.class_.split("/")[: len(self.klass.strip("/").split("/"))] != self.klass.strip("/").split("/"):
            return False
        for want, have in ((self.customer_type, m.customer_type), (self.business, m.business), (self.dept, m.dept),
                           (self.status, m.status.value)):
            if want is not None and have != want:
                return False
        if (self.created_from and m.created < self.created_from) or (self.created_to and m.created > self.created_to):
            return False
        if self.due:
            st = reviews.state(v.policy.data, m, reviews.history(v, m.id, member_records=mem), today)
            if m.status != DossierStatus.OPEN or not (st["stale"] or st["needs_update"]):
                return False
        if self.incomplete:
            _, wanted = completeness.rules(v.policy.data, m.customer_type)
            gaps = completeness.missing_categories(v.policy.data, m) or \
                [f for f in wanted if present is not None and f not in present]
            if m.status != DossierStatus.OPEN or not gaps:
                return False
        return True


def _row(m: Manifest, hit: Hit | None) -> dict[str, Any]:
    row: dict[str, Any] = m.facts()
    if hit is not None:
        row.update(field=hit.field, fields=hit.fields)
    return row


def _confirmed(v: Vault, hit: Hit, info: Mapping[str, Any] | None) -> Manifest | None:
    """The manifest, if it confirms the index row: same number, same newest profile version."""
    try:
        m = manifests.load_manifest(v, hit.dossier)
    except IntegrityError:
        return None
    p = m.profile[-1]
    if info is None or m.number != hit.number or m.status == DossierStatus.DESTROYED or p.sealed is None \
            or (info["version"], info["sealed_sha256"], info["by"]) != \
            (p.version, searchseal.sealed_digest(p.sealed), p.by):
        return None
    return m


def open_or_build(actor: Actor) -> searchindex.Index:
    """The index; built from the sealed profiles on first use (a vault of an earlier version)."""
    idx = searchindex.open_index(actor)
    if idx is None:
        rebuild(actor)
        idx = searchindex.open_index(actor)
    assert idx is not None
    return searchwrite.merge_if_due(actor, idx) or idx


def _behind(actor: Actor, idx: searchindex.Index) -> bool:
    """Re-index dossiers the history has and the index lacks — an index put back from an older copy
    must not hide a customer — and drop those it has and the history does not. Compares counts
    first (cheap); only when they differ are the dossier shards read. True if anything changed."""
    st = authority.state(actor.vault)
    if hasattr(st["dossiers"], "count"):  # the client's stored state: count without reading every dossier
        destroyed = sum(1 for d in st["destructions"].values() if d.get("state") == "executed" and "/" not in d["target"])
        if idx.live_count() == st["dossiers"].count() - destroyed:
            return False
    live = {d for d, f in st["dossiers"].items() if not f["destroyed"]}
    if idx.live_count() == len(live):
        return False
    have = set(idx.db.ids())
    missing, extra = live - have, have - live
    changed = bool(missing) and _repair(actor, sorted(missing)) > 0
    if extra:  # left by a create interrupted before its commit point: never shown, but counted
        with actor.vault.lock(exclusive=True):
            fresh = searchindex.open_index(actor)
            if fresh is not None:
                fresh.db.materialize()
                for d in extra:
                    fresh.db.remove(d)
                searchwrite.save(actor, fresh)
                actor.audit("index.rebuild")  # the entry that commits the shards and head without them
        changed = True
    return changed


def rebuild(actor: Actor) -> int:
    """Build the index afresh from every dossier's sealed profile; returns how many it holds."""
    actor.require("find")
    v = actor.vault
    with v.lock(exclusive=True):
        items = ((m, manifests.read_profile(actor, m)) for m in manifests.iter_manifests(v) if m.status != DossierStatus.DESTROYED)
        n = searchwrite.build(actor, items)
        actor.audit("index.rebuild")
    return n


def _repair(actor: Actor, ids: Iterable[str]) -> int:
    """Re-index dossiers whose index rows their manifests did not confirm (a write interrupted
    between the index and the manifest); the sealed profile is the truth."""
    v = actor.vault
    n = 0
    with v.lock(exclusive=True):
        for d in ids:
            try:
                m = manifests.load_manifest(v, d)
            except IntegrityError:
                continue
            if m.status != DossierStatus.DESTROYED and m.profile[-1].sealed is not None:
                searchwrite.add_profile(actor, m, manifests.read_profile(actor, m))
                actor.audit("index.repair", number=m.number)
                n += 1
    return n


def find(actor: Actor, text: str | None = None, *, name: str | None = None, contact: str | None = None,
         number: str | None = None, filters: Filters | None = None, limit: int = DEFAULT_LIMIT,
         offset: int = 0, _retry: bool = True) -> dict[str, Any]:
    """Dossiers matching a query (and the filters), best first: ``{"total", "rows", "stale"}``.

    ``number`` is an exact archive number (no index key needed). Otherwise the query is ``text``
    (every indexed field), ``name`` (name and other names) or ``contact``; each of its words must
    occur. Without a query, the filters alone select from every manifest.
    """
    v = actor.vault
    filters = filters or Filters()
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InputError(N_("--limit must be between 1 and {MAX_LIMIT}, --offset not negative"), MAX_LIMIT=MAX_LIMIT)
    if number:
        actor.require("dossier.list")
        found = manifests.load_manifest(v, manifests.resolve(v, number))
        rows = [] if not filters.keep(v, found, None, v.clock.today_date(), members.all_members(v)) else [_row(found, None)]
        return {"total": len(rows), "rows": [dict(r, field="number", fields=["number"]) for r in rows], "stale": 0}
    query, fields = (text, None) if text else (name, NAME_FIELDS) if name else (contact, CONTACT_FIELDS)
    if not query and not filters.active():
        raise InputError(N_("nothing to find"), hint=N_("give words to look for, --name, --contact, --number or a filter"))
    actor.require("find")
    actor.audit("find")  # the searched words are customer data: never logged
    idx = open_or_build(actor)
    today, mem = v.clock.today_date(), members.all_members(v)
    if _retry and _behind(actor, idx):
        idx = open_or_build(actor)
    if not query:
        hits = [Hit(mf.id, mf.number, "number") for mf in manifests.iter_manifests(v) if mf.status != DossierStatus.DESTROYED]
        total = len(hits)
    else:  # with filters every candidate is confirmed; without, only the page is ranked in full
        first = None if filters.active() else offset + limit
        try:
            total, hits = idx.db.search_page(query, fields, first)
        except IntegrityError:
            if not searchindex.moved(v, idx):
                raise
            idx = open_or_build(actor)  # a merge by another command swept the shards this one had opened
            total, hits = idx.db.search_page(query, fields, first)
    rows = []
    stale: list[str] = []
    if filters.active():  # every candidate's manifest is read, so the total is exact
        kept = []
        for h in hits:
            info = idx.db.info(h.dossier)
            m = _confirmed(v, h, info)
            if m is None:
                stale.append(h.dossier)
            elif filters.keep(v, m, info["fields"] if info else None, today, mem):
                kept.append(_row(m, h if query else None))
        total, rows = len(kept), kept[offset:offset + limit]
    else:  # only the page is read and confirmed
        for h in hits[offset:offset + limit]:  # (total counts the rows the index found)
            m = _confirmed(v, h, idx.db.info(h.dossier))
            if m is None:
                stale.append(h.dossier)
            else:
                rows.append(_row(m, h))
    if stale and _retry and _repair(actor, stale):
        return find(actor, text, name=name, contact=contact, filters=filters, limit=limit, offset=offset, _retry=False)
    for i, r in enumerate(rows):
        r["rank"] = offset + i + 1
    return {"total": total, "rows": rows, "stale": len(stale)}


def resolve_customer(actor: Actor, no: str, *, choose: str | None = None) -> tuple[str, str]:
    """Resolve a consultation request by customer name to one dossier, for the archivist granting it.

    Candidates come from the index (name and other names) and are confirmed on the sealed profile:
    every word of the given name in the dossier's name or one of its other names. One candidate, or
    one whose name equals the given name, is the answer; otherwise the grant is refused with the
    candidates' numbers, and the archivist may ``choose`` one of them. Returns (dossier id, number).
    """
    actor.require("grant.manage")
    v = actor.vault
    earlier = grants.resolution(v, grants.request_record(v, no))
    if earlier is not None:  # a grant that did not complete: its signed resolution stands
        return earlier.dossier, earlier.number
    name = grants.customer_name(actor, no)
    words, whole = query_words(name), fold(name)
    found = find(actor, name=name, limit=MAX_LIMIT)["rows"] if len(whole) >= 2 else []
    confirmed: list[tuple[Manifest, bool]] = []
    for r in found:
        m = manifests.load_manifest(v, manifests.resolve(v, r["number"]))
        prof = manifests.read_profile(actor, m)
        names = [fold(prof.get("name", ""))] + [fold(a) for a in prof.get("aliases") or []]
        if any(all(w in n for w in words) for n in names):
            confirmed.append((m, whole in names))
    if choose is not None:
        pick = [m for m, _ in confirmed if m.number == choose]
    else:
        pick = [m for m, exact in confirmed if exact] or [m for m, _ in confirmed]
    if len(pick) == 1:
        return pick[0].id, pick[0].number
    actor.audit("grant.create", outcome="refused", ref=no)
    if choose is not None:
        raise NotFoundError(N_("{choose} is not a dossier whose name matches the one given in {no}"), choose=choose, no=no)
    if not pick:
        raise NotFoundError(N_("no dossier matches the customer name given in {no}"),
                            hint=N_("deny it ('vault request deny {no} --reason …') or ask for the archive number"), no=no)
    nums = [m.number for m in pick]
    raise ConflictError(N_("{count} dossiers match the customer name given in {no}: {nums}"),
                        hint=N_("choose one with 'vault grant {no} --number NO', or deny the request"), count=len(nums), no=no, nums=', '.join(nums[:10]) + (' …' if len(nums) > 10 else ''))
