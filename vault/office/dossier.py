"""Dossiers: creation, signed manifests, sealed profiles, listing and finding [R-3.1, R-3.2]."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any


from vault import plugins
from vault.archive import grants, searchwrite
from vault.archive.numbering import allocate_archive_number
from vault.archive.manifestrecord import Manifest
from vault.archive.states import DossierStatus
from vault.archive.manifests import (CUSTOMER_TYPES, _seal_profile, load_manifest, manifest_file, read_profile,
                                     resolve, summary)
from vault.archive.schemes import configured
from vault.errors import InputError
from vault.i18n import N_
from vault.store import make_dir
from vault.store.keytable import KeyTable
from vault.store.typed import Signature
from vault.archive.labels import resolve_name

if TYPE_CHECKING:
    from vault.archive.vault import Actor


def _facts(customer_type: str, business: str, dept: str, created: str) -> dict[str, str]:
    return {"customer_type": customer_type, "business": business, "dept": dept, "created": created}


def create(actor: Actor, *, customer_type: str, business: str, dept: str, profile: dict[str, Any]) -> str:
    """Create a dossier with its sealed profile; returns its archive number [R-3.2.2]."""
    actor.require("dossier.create")
    v = actor.vault
    if customer_type not in CUSTOMER_TYPES:
        raise InputError(N_("unknown customer type {customer_type!r}"), hint=N_("use enterprise or individual"), customer_type=customer_type)
    business = resolve_name(v, "business type", business)
    dept = resolve_name(v, "department", dept)
    if not str(profile.get("name") or "").strip():
        raise InputError(N_("a dossier needs the customer's name (not blank)"), param="name")
    created = actor.clock.today()
    facts = _facts(customer_type, business, dept, created)
    numbering, classifier = configured(v, "numbering"), configured(v, "classification")
    klass = classifier.classify(facts=facts)
    dossier_id = secrets.token_hex(16)
    with v.lock(exclusive=True):
        number = allocate_archive_number(v, lambda seq: numbering.number(sequence=seq, facts=facts), dossier_id)
        table = KeyTable(dossier_id)
        stamp = actor.clock.stamp()
        version_1 = _seal_profile(table, profile, actor.name, 1, at=stamp,
                                  changed=sorted(k for k, x in profile.items() if x))
        # Unsigned yet: ``manifest_file`` signs it (and sets ``updated_*``) as it writes it.
        manifest = Manifest(format=1, id=dossier_id, number=number, customer_type=customer_type, business=business,
                            dept=dept, class_=klass, created=created, created_at=stamp, created_by=actor.name,
                            status=DossierStatus.OPEN, revision=1, next_doc=1,
                            profile=(version_1,),
                            documents=(), updated_at=stamp, updated_by=actor.name,
                            signature=Signature(by=actor.name, ed25519=""))
        make_dir(v.layout.dossier_dir(dossier_id))
        grants.save_keys(actor, dossier_id, table, active=[])  # a new dossier: no grant on it yet
        searchwrite.add_profile(actor, manifest, profile)  # before the commit point: see FORMAT §11
        # The department is a fact of the entry: the history checks a liaison's later updates by it.
        actor.commit("dossier.create", manifest_file(actor, manifest), number=number, obj=dossier_id, rev=1,
                     subject={"dept": dept})
    return number


def show(actor: Actor, number: str) -> dict[str, Any]:
    """Cleartext facts plus, for a member who may read it, the sealed profile."""
    actor.require("dossier.list")
    v = actor.vault
    m = load_manifest(v, resolve(v, number))
    out = summary(m)
    if m.status == DossierStatus.DESTROYED:
        return out
    if v.policy.may(actor.roles, "dossier.read") or grants.active_grant(v, m.id, actor.name):
        actor.audit("dossier.read", number=m.number)
        out["profile"] = read_profile(actor, m, grants.open_key_table(actor, m.id, number=m.number))
    return out


def try_numbering(rule: dict[str, Any], *, today: str) -> dict[str, Any]:
    """The numbering rule, once its scheme is installed and numbers a sample dossier; the rule is
    fixed in the genesis record, so a bad one is refused before the vault exists."""
    registration = plugins.numbering_schemes(plugins.get_plugin_manager()).get(rule["scheme"])
    if registration is None:
        raise InputError(N_("numbering scheme {scheme!r} is not installed"), hint=N_("see 'vault plugins list'"), scheme=rule['scheme'])
    try:
        sample = registration(dict(rule.get("options", {}))).number(
            sequence=1, facts={"customer_type": "enterprise", "business": "sample", "dept": "sample",
                               "created": today})
    except Exception as e:  # a plugin's own error: the options do not suit it
        raise InputError(N_("numbering scheme {scheme!r} refuses these options: {e}"),
                         hint=N_("pass --numbering-option KEY=VALUE as the scheme documents"), scheme=rule['scheme'], e=e) from None
    if not isinstance(sample, str) or not sample:
        raise InputError(N_("numbering scheme {scheme!r} gives no number"), scheme=rule['scheme'])
    return {"scheme": rule["scheme"], "options": dict(rule.get("options", {}))}
