"""Completeness of dossiers: the categories and profile fields the policy says a dossier must hold [R-1.3.2].

Categories are checked from the manifest alone (cleartext, no key): a category is present when a
current document of it exists — not superseded and not destroyed. Fields need the sealed profile, so
they are checked only for a member who may read the dossier (the archive ring, or an active grant);
for anyone else the report says so and names category gaps only. Reports name categories and field
*names*, never a value.

"Since when" is the dossier's creation date: the manifest keeps no date at which a thing went
missing without decrypting older profile versions, and a dossier that lacks something has lacked it
at most since it was opened — so the date is the earliest the gap can have begun.
"""

from __future__ import annotations

from vault.i18n import N_
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping


from vault.archive import manifests

from vault.archive import grants
from vault.archive.manifestrecord import Manifest
from vault.archive.states import DossierStatus

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

#: The reason given, in place of field gaps, to a member whose keys do not open the dossier.
FIELDS_NEED_READ = N_("field checks need read access to the dossier")


def rules(policy_data: Mapping[str, Any], customer_type: str) -> tuple[list[str], list[str]]:
    """The categories and profile fields a dossier of ``customer_type`` must hold, per the policy."""
    rule = policy_data.get("completeness", {}).get(customer_type, {})
    return list(rule.get("categories", [])), list(rule.get("fields", []))


def current_categories(m: Manifest) -> set[str]:
    """Categories of the dossier's current documents: not superseded, not destroyed."""
    return {d.category for d in m.documents if d.is_current}


def missing_categories(policy_data: Mapping[str, Any], m: Manifest) -> list[str]:
    """Required categories the dossier holds no current document of (needs no key)."""
    wanted, _ = rules(policy_data, m.customer_type)
    have = current_categories(m)
    return [c for c in wanted if c not in have]


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return all(_empty(x) for x in value)
    return False


def missing_fields(policy_data: Mapping[str, Any], m: Manifest, profile: Mapping[str, Any]) -> list[str]:
    """Names of required profile fields that are absent or empty in ``profile`` (the decrypted newest version)."""
    _, wanted = rules(policy_data, m.customer_type)
    return [f for f in wanted if _empty(profile.get(f))]


def can_read(actor: Actor, dossier_id: str) -> bool:
    """Whether this member's keys open the dossier: the archive ring, or an active grant."""
    v = actor.vault
    return v.policy.may(actor.roles, "dossier.read") or grants.active_grant(v, dossier_id, actor.name) is not None


def field_checker(actor: Actor) -> Callable[[Manifest], list[str] | None]:
    """A function giving a dossier's missing field names, or ``None`` where this member cannot read it.

    Each profile opened is an audit entry (``dossier.completeness`` with the archive number): the
    values are decrypted, even though only field names leave this module.
    """
    policy_data = actor.vault.policy.data

    def check(m: Manifest) -> list[str] | None:
        _, wanted = rules(policy_data, m.customer_type)
        if not wanted or not can_read(actor, m.id):
            return [] if not wanted else None
        if not actor.vault.layout.key_table(m.id).exists():
            return None  # mid-destruction (or damaged): 'vault check' names it; the report goes on
        table = grants.open_key_table(actor, m.id, number=m.number)
        actor.audit("dossier.completeness", number=m.number)
        return missing_fields(policy_data, m, manifests.read_profile(actor, m, table))

    return check


def assess(policy_data: Mapping[str, Any], m: Manifest,
           fields: Callable[[Manifest], list[str] | None] | None = None) -> dict[str, Any]:
    """One dossier's completeness: what is missing and since when; field names only where checked."""
    cats = missing_categories(policy_data, m)
    flds = fields(m) if fields else None
    row: dict[str, Any] = {
        "number": m.number, "dept": m.dept, "class": m.class_, "customer_type": m.customer_type,
        "missing_categories": cats, "fields_checked": flds is not None,
        "missing_fields": flds if flds is not None else [],
    }
    row["complete"] = not cats and not row["missing_fields"]
    row["incomplete_since"] = None if row["complete"] else m.created
    if flds is None:
        row["note"] = FIELDS_NEED_READ
    return row


def select(v: Vault, *, number: str | None = None, dept: str | None = None) -> Iterable[Manifest]:
    """The manifests a report covers: one dossier by number (any status but destroyed), or every open
    dossier, optionally of one department."""
    if number:
        m = manifests.load_manifest(v, manifests.resolve(v, number))
        return [m] if m.status != DossierStatus.DESTROYED else []
    return [m for m in manifests.iter_manifests(v) if m.status == DossierStatus.OPEN and (dept is None or m.dept == dept)]


def report(actor: Actor, *, number: str | None = None, dept: str | None = None) -> list[dict[str, Any]]:
    """``vault dossier completeness``: every selected dossier with what it lacks (complete ones too)."""
    actor.require("review.read", number=number)
    v = actor.vault
    actor.audit("review.completeness", number=number)
    check = field_checker(actor)
    return [assess(v.policy.data, m, check) for m in select(v, number=number, dept=dept)]
