"""The register: the archive department's archive-wide list of dossiers, one row at a time [R-3.2.2].

Each row holds the dossier's cleartext facts (number, class, customer type, department, dates,
document counts, where its paper originals are kept) — what ``dossier list`` already shows every
member who may ``dossier.list`` — and the customer's name only for a member whose roles may
``dossier.read`` (the archive department, which manages every archive [R-2.1]) and whose identity
opens the dossier's key table. Anyone else gets ``customer = None`` [R-1.3.3]. A name leaving for
a file or a pipe is a copy [R-3.4.2]: only roles holding ``doc.save`` write names anywhere but a
terminal. Rows are produced one manifest at a time, so memory does not grow with the vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from vault.archive.states import DossierStatus
from vault.archive.manifestrecord import Manifest
from vault.archive import authority, grants, members, schedule
from vault.archive.manifests import load_manifest, parse_date, read_profile
from vault.errors import InputError, NoIdentityMatchError, PermissionDeniedError
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.vault import Actor

REGISTER_FORMAT = "vault-register-1"
#: The columns of every row, in table and CSV order.
COLUMNS = ("number", "customer", "class", "customer_type", "business", "dept", "status", "opened", "closed",
           "retention", "retention_end", "documents", "current_documents", "destroyed_documents", "originals",
           "paper_locations")
STATUSES = ("open", "closed", "destroyed")


@dataclass(frozen=True)
class Filters:
    """Which dossiers a register lists. Dates are ``YYYY-MM-DD``, both ends included."""

    klass: str | None = None  # a class-path prefix, compared by whole ``/``-separated segments
    customer_type: str | None = None
    dept: str | None = None
    status: str | None = None
    opened_from: str | None = None
    opened_to: str | None = None
    closed_from: str | None = None
    closed_to: str | None = None
    retention_from: str | None = None
    retention_to: str | None = None
    include_destroyed: bool = False

    def checked(self) -> Filters:
        """These filters with their dates parsed; a bad value is one clear input error."""
        if self.status is not None and self.status not in STATUSES:
            raise InputError(N_("unknown status {status!r}"), hint=N_("use one of: {STATUSES}"), status=self.status, STATUSES=', '.join(STATUSES))
        dates = {k: parse_date(getattr(self, k)) for k in ("opened_from", "opened_to", "closed_from", "closed_to",
                                                            "retention_from", "retention_to")
                 if getattr(self, k) is not None}
        return Filters(**{**self.__dict__, **dates})

    def keeps(self, row: dict[str, Any]) -> bool:
        if row["status"] == "destroyed" and not (self.include_destroyed or self.status == "destroyed"):
            return False
        if self.klass and not _under(row["class"], self.klass):
            return False
        for key, want in (("customer_type", self.customer_type), ("dept", self.dept), ("status", self.status)):
            if want is not None and row[key] != want:
                return False
        return (_within(row["opened"], self.opened_from, self.opened_to)
                and _within(row["closed"], self.closed_from, self.closed_to)
                and _within(row["retention_end"], self.retention_from, self.retention_to))


def _under(klass: str, prefix: str) -> bool:
    want = [p for p in prefix.split("/") if p]
    return klass.split("/")[:len(want)] == want


def _within(value: str | None, lo: str | None, hi: str | None) -> bool:
    if lo is None and hi is None:
        return True
    return value is not None and (lo is None or value >= lo) and (hi is None or value <= hi)


def names_shown(actor: Actor, *, to_terminal: bool) -> bool:
    """Whether this member's register carries customer names: the archive department reads every
    dossier [R-2.1]; a name written anywhere but a terminal is a copy [R-3.4.2] (``doc.save``)."""
    may = actor.vault.policy.may
    return may(actor.roles, "dossier.read") and (to_terminal or may(actor.roles, "doc.save"))


def rows(actor: Actor, filters: Filters = Filters(), *, to_terminal: bool = False) -> Iterator[dict[str, Any]]:
    """The register's rows in archive-number order, one manifest read at a time.

    One audit entry ``register`` is written before the first row (``ref`` = ``doc.save`` when names
    leave for a file or a pipe, as ``doc.copy`` records it).

    :param to_terminal: the rows are shown on a terminal, not written to a file or a pipe.
    :raises PermissionDeniedError: the member may not ``dossier.list``.
    """
    actor.require("dossier.list")
    filters = filters.checked()
    v = actor.vault
    names = names_shown(actor, to_terminal=to_terminal)
    actor.audit("register", ref="doc.save" if names and not to_terminal else None)
    mem = members.all_members(v)
    today = v.clock.today()
    for _number, dossier_id in sorted(authority.state(v)["numbers"].items()):
        m = load_manifest(v, dossier_id, member_records=mem)
        row = _row(m, v.policy.data, today)
        if not filters.keeps(row):
            continue
        if names and m.status != DossierStatus.DESTROYED:
            row["customer"] = _name(actor, m)
        yield row


def _name(actor: Actor, m: Manifest) -> str | None:
    try:
        table = grants.open_key_table(actor, m.id, number=m.number)
    except (NoIdentityMatchError, PermissionDeniedError):
        return None  # a member of the role whose ring does not hold them yet sees no name
    return str(read_profile(actor, m, table).get("name") or "") or None


def _row(m: Manifest, policy: Any, today: str) -> dict[str, Any]:
    """The cleartext facts of one dossier on ``today``: no key needed."""
    live = [d for d in m.documents if not d.is_destroyed]
    ends = [schedule.schedule(m, d, policy, today=today) for d in live]
    statuses = {s["status"] for s in ends}
    if not ends:
        retention, end = "none", None
    elif "waiting" in statuses or "no-rule" in statuses:
        # One document whose event is not recorded keeps the whole dossier's end open.
        retention, end = "waiting" if "waiting" in statuses else "no-rule", None
    else:
        end = max(s["until"] for s in ends)
        retention = "due" if statuses == {"due"} else "kept"
    originals = [d for d in live if d.original]
    return {
        "number": m.number, "customer": None, "class": m.class_, "customer_type": m.customer_type,
        "business": m.business, "dept": m.dept, "status": m.status.value, "opened": m.created,
        "closed": m.closed, "retention": retention, "retention_end": end,
        "documents": len(live), "current_documents": sum(1 for d in live if not d.superseded_by),
        "destroyed_documents": len(m.documents) - len(live), "originals": len(originals),
        "paper_locations": sorted({d.paper_location for d in originals if d.paper_location}),
    }
