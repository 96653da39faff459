"""Dossiers: creation, signed manifests, sealed profiles, listing and finding [R-3.1, R-3.2]."""

from __future__ import annotations

import datetime as dt
import secrets
import tomllib
from typing import Any, Iterator

import tomli_w

from vault import clock
from vault.archive import authority, members, searchindex
from vault.errors import FormatError, InputError, IntegrityError, NotFoundError, PluginError
from vault.store import index, records
from vault.store.keytable import KeyTable, read_key_table, seal, unseal, write_key_table

CUSTOMER_TYPES = ("enterprise", "individual")
PROFILE_FIELDS = ("name", "aliases", "address", "contact", "legal_rep", "notes")


def _facts(customer_type: str, business: str, dept: str, created: str) -> dict[str, str]:
    return {"customer_type": customer_type, "business": business, "dept": dept, "created": created}


def _scheme(v, family: str):
    from vault import plugins

    cfg = v.config[family]
    # Loading entry points scans every installed distribution: once per opened vault is enough.
    pm = getattr(v, "_plugin_manager", None)
    if pm is None:
        pm = v._plugin_manager = plugins.get_plugin_manager()
    registry = plugins.numbering_schemes(pm) if family == "numbering" else plugins.classifiers(pm)
    registration = registry.get(cfg["scheme"])
    if registration is None:
        raise PluginError(f"{family} scheme {cfg['scheme']!r} is not installed", hint="see 'vault plugins list'")
    return registration(dict(cfg.get("options", {})))


def create(actor, *, customer_type: str, business: str, dept: str, profile: dict[str, Any]) -> str:
    """Create a dossier with its sealed profile; returns its archive number [R-3.2.2]."""
    from vault.archive.vault import check_name

    actor.require("dossier.create")
    v = actor.vault
    if customer_type not in CUSTOMER_TYPES:
        raise InputError(f"unknown customer type {customer_type!r}", hint="use enterprise or individual")
    check_name("business type", business)
    check_name("department", dept)
    if not profile.get("name"):
        raise InputError("a dossier needs the customer's name", hint="pass --name")
    created = clock.today()
    facts = _facts(customer_type, business, dept, created)
    numbering, classifier = _scheme(v, "numbering"), _scheme(v, "classification")
    klass = classifier.classify(facts=facts)
    dossier_id = secrets.token_hex(16)
    with v.lock(exclusive=True):
        # The plugin formats the number before anything is written: if it raises, the vault is as it
        # was. The sequence is committed before the number is recorded, so a crash between the two
        # leaves a gap, never a number that could be issued twice.
        seq = index.peek_sequence(v.root)
        number = numbering.number(sequence=seq, facts=facts)
        index.commit_sequence(v.root, seq)
        index.issue_number(v.root, number, dossier_id)
        table = KeyTable(dossier_id)
        manifest = {
            "format": 1,
            "id": dossier_id,
            "number": number,
            "customer_type": customer_type,
            "business": business,
            "dept": dept,
            "class": klass,
            "created": created,
            "created_at": clock.stamp(),
            "created_by": actor.name,
            "status": "open",
            "revision": 1,
            "next_doc": 1,
            "profile": [_seal_profile(table, profile, actor.name, 1, changed=sorted(k for k, x in profile.items() if x))],
            "documents": [],
        }
        v.layout.dossier_dir(dossier_id).mkdir(mode=0o700)
        write_table(v, table)
        searchindex.add_profile(actor, manifest, profile)  # before the commit point: see FORMAT §11
        actor.commit("dossier.create", manifest_file(actor, manifest), number=number, obj=dossier_id, rev=1)
    return number


def _seal_profile(table: KeyTable, profile: dict[str, Any], by: str, version: int, *, changed: list[str]) -> dict:
    clean = {k: v for k, v in profile.items() if k in PROFILE_FIELDS and v}
    kid, blob = seal(tomli_w.dumps(clean).encode(), table)
    import base64

    return {"version": version, "key": kid, "at": clock.stamp(), "by": by, "fields": changed,
            "sealed": base64.b64encode(blob).decode()}


def manifest_file(actor, manifest: dict[str, Any]) -> dict[str, bytes]:
    """The signed, validated manifest as ``{path: bytes}`` for ``actor.commit`` (its commit point)."""
    signed = actor.sign(dict(manifest, updated_at=clock.stamp(), updated_by=actor.name))
    records.validate(signed, "manifest", what=f"manifest of {manifest['number']}")
    return {f"dossiers/{manifest['id']}/manifest.toml": records.dump_toml(signed)}


def write_table(v, table: KeyTable) -> None:
    """Write the key table, encrypted to the current rings, before the entry that commits its use.

    Key tables are not history records: the backup key mirror restores the newest table beside an
    older snapshot, and a table swapped by someone outside the rings gives them nothing — it is
    re-encrypted to the ring recipients, which the history binds — while the keys a manifest names
    must open its documents (``vault check --read-data``). Written first, an interrupted change
    leaves only unused entries in it, as in format 1.
    """
    write_key_table(v.layout.key_table(table.dossier), table, members.ring_recipients(v))


def read_table(v, dossier_id: str, identities) -> KeyTable:
    """The dossier's key table (it must name this dossier: a table moved from another is refused)."""
    return read_key_table(v.layout.key_table(dossier_id), identities, dossier=dossier_id)


def load_manifest(v, dossier_id: str, *, member_records: dict | None = None) -> dict[str, Any]:
    """The manifest the history last wrote, validated; IntegrityError names the file otherwise."""
    what = f"dossiers/{dossier_id}/manifest.toml"
    try:
        m = authority.load(v, what, schema="manifest")
    except FormatError as e:
        raise IntegrityError(str(e)) from None
    if m["id"] != dossier_id:
        raise IntegrityError(f"{what}: belongs to another dossier")
    members.verify_by_member(v, m, what=what, members=member_records)
    return m


def canonical_number(v, text: str) -> str:
    """``text`` written as the vault wrote it: archive numbers are matched case-insensitively.

    The dossier part is looked up as given, then upper-cased (the built-in schemes issue upper-case
    numbers); the document sequence after ``/`` is digits. Unknown numbers come back unchanged.
    """
    head, sep, tail = text.partition("/")
    for candidate in (head, head.upper()):
        if index.lookup_number(v.root, candidate) is not None:
            return candidate + sep + tail
    return text


def resolve(v, number: str) -> str:
    """Dossier id of an archive number (or of the dossier part of a document number).

    The history's dossier.create entries are the authority; ``index/numbers`` is only a hint.
    """
    dossier_id = authority.state(v)["numbers"].get(number.split("/")[0])
    if dossier_id is None:
        raise NotFoundError(f"no dossier numbered {number.split('/')[0]}", hint="see 'vault dossier list'")
    return dossier_id


def iter_manifests(v) -> Iterator[dict[str, Any]]:
    """Every manifest the history created, verified, in archive-number order."""
    mem = members.all_members(v)
    out = [load_manifest(v, d, member_records=mem) for d in authority.state(v)["dossiers"]]
    yield from sorted(out, key=lambda m: m["number"])


def summary(m: dict[str, Any]) -> dict[str, Any]:
    """The cleartext facts of a dossier (safe to show to any member)."""
    keys = ("number", "customer_type", "business", "dept", "class", "created", "status", "revision")
    live = [d for d in m["documents"] if not d.get("superseded_by")]
    return {**{k: m[k] for k in keys}, "documents": len(m["documents"]), "current_documents": len(live)}


def read_profile(actor, m: dict[str, Any], table: KeyTable | None = None) -> dict[str, Any]:
    """Decrypt the newest profile version (needs read access to the dossier)."""
    import base64

    table = table or read_table(actor.vault, m["id"], actor.read_identities())
    p = m["profile"][-1]
    plain = unseal(base64.b64decode(p["sealed"]), table, what=f"profile v{p['version']} of {m['number']}")
    return tomllib.loads(plain.decode())


def show(actor, number: str) -> dict[str, Any]:
    """Cleartext facts plus, for a member who may read it, the sealed profile."""
    actor.require("dossier.list")
    v = actor.vault
    m = load_manifest(v, resolve(v, number))
    out = summary(m)
    from vault.office import access

    if m["status"] == "destroyed":
        return out
    if v.policy.may(actor.roles, "dossier.read") or access.active_grant(v, m["id"], actor.name):
        actor.audit("dossier.read", number=m["number"])
        out["profile"] = read_profile(actor, m, access.open_key_table(actor, m["id"], number=m["number"]))
    return out


def parse_date(text: str) -> str:
    """A calendar date ``YYYY-MM-DD``; one clear error otherwise."""
    try:
        return dt.date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_date(text)
    except ValueError:
        return _bad_date(text)


def _bad_date(text: str) -> str:
    raise InputError(f"bad date {text!r}", hint="use YYYY-MM-DD, e.g. 2026-03-31")
