"""Keeping dossiers current: profile updates as new sealed versions, and their history [R-3.5.2, R-1.3.1]."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vault.archive.states import DossierStatus
from vault.archive.manifestrecord import Manifest
from vault.archive import grants, searchwrite
from vault.archive.manifests import PROFILE_FIELDS, _seal_profile, load_manifest, manifest_file, read_profile, resolve
from vault.errors import InputError, PermissionDeniedError
from vault.i18n import N_
from vault.store.keytable import open_values
from vault.archive.schemes import configured
from vault.archive.labels import resolve_name

if TYPE_CHECKING:
    from vault.archive.vault import Actor


def _may_update(actor: Actor, m: Manifest) -> None:
    """Archivists update any dossier; a liaison updates their own department's, through a grant."""
    v = actor.vault
    if v.policy.may(actor.roles, "dossier.read"):
        actor.require("dossier.update", number=m.number)
        return
    if "liaison" in actor.roles and actor.record["dept"] == m.dept:
        actor.require("dossier.update", number=m.number)
        return
    actor.audit("dossier.update", outcome="refused", number=m.number)
    raise PermissionDeniedError(N_("you may not update dossier {number}"),
                                hint=N_("archivists, or a liaison of the dossier's department, update it"), number=m.number)


def update(actor: Actor, number: str, changes: dict[str, Any], *, business: str | None = None) -> int:
    """Write a new version of the sealed profile (old versions are kept); returns the version number."""
    changes = {k: v for k, v in changes.items() if v not in (None, [], "")}
    if "name" in changes and not str(changes["name"]).strip():
        raise InputError(N_("the customer's name cannot be blank"), hint=N_("pass --name with the name"))
    for k in changes:
        if k not in PROFILE_FIELDS:
            raise InputError(N_("unknown profile field {k!r}"), k=k)
    if not changes and not business:
        raise InputError(N_("nothing to update"), param="changes")
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        m = load_manifest(v, dossier_id)
        _may_update(actor, m)
        if m.status == DossierStatus.DESTROYED:
            raise InputError(N_("dossier {number} has been destroyed"), number=m.number)
        table = grants.open_key_table(actor, dossier_id, number=m.number)
        old = read_profile(actor, m, table)
        new = {**old, **changes}
        changed = sorted(k for k in changes if old.get(k) != new.get(k))
        business = resolve_name(v, "business type", business) if business else business
        if business and business != m.business:
            facts = {"customer_type": m.customer_type, "business": business, "dept": m.dept, "created": m.created}
            m = replace(m, business=business, class_=configured(v, "classification").classify(facts=facts))
            changed.append("business")
        if not changed:
            raise InputError(N_("the values given are the current ones; nothing changed"))
        version = m.profile[-1].version + 1
        added = _seal_profile(table, new, actor.name, version, changed=changed, at=actor.clock.stamp())
        m = replace(m, profile=(*m.profile, added), revision=m.revision + 1)
        # Needs no index key, so a liaison's update reaches the index too (before the commit point).
        searchwrite.add_profile(actor, m, new)
        actor.commit("dossier.update", {**manifest_file(actor, m), **grants.key_files(actor, dossier_id, table)},
                     number=m.number, obj=dossier_id, rev=m.revision)
    return version


def history(actor: Actor, number: str) -> list[dict[str, Any]]:
    """Profile versions: who, when, which fields changed; the values only for a member who may read."""
    actor.require("dossier.list", number=number)
    v = actor.vault
    m = load_manifest(v, resolve(v, number))
    rows: list[dict[str, Any]] = [{"version": p.version, "at": p.at, "by": p.by, "fields": list(p.fields)}
                                  for p in m.profile]
    readable = m.status != DossierStatus.DESTROYED and (
        v.policy.may(actor.roles, "dossier.read") or grants.active_grant(v, m.id, actor.name))
    if readable:
        table = grants.open_key_table(actor, m.id, number=m.number)
        actor.audit("dossier.read", number=m.number)
        for row, p in zip(rows, m.profile):
            row["values"] = open_values(p.sealed or "", table, what=f"profile v{p.version} of {m.number}")
    return rows
