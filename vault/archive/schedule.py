"""Retention schedules: trigger events, the rule covering a document, when its retention ends [R-3.3.2]."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping

from vault import plugins
from vault.archive import authority, members
from vault.archive.holds import held_dossiers
from vault.archive.manifestrecord import Document, Manifest
from vault.archive.manifests import iter_manifests, load_manifest
from vault.errors import VaultError

if TYPE_CHECKING:
    from vault.archive.vault import Vault

# Events every vault knows; plugins add more through ``vault_register_retention_events``.
INTRINSIC_EVENTS = {
    "document-date": "the date of the material itself [R-3.1.3]",
    "dossier-closed": "the dossier was closed ('vault dossier close')",
}


def known_events() -> dict[str, str]:
    """Every event a schedule may count from: intrinsic ones and those plugins register."""
    found = {n: e.description for n, e in plugins.retention_events(plugins.get_plugin_manager()).items()}
    return {**INTRINSIC_EVENTS, **found}


def rule_for(policy: Mapping[str, Any], m: Manifest, d: Document) -> dict[str, Any] | None:
    """The first retention rule that covers a document, or None."""
    for r in policy.get("retention", []):
        if d.category not in r["categories"]:
            continue
        if r.get("customer_types") and m.customer_type not in r["customer_types"]:
            continue
        if r.get("class_prefix") and not m.class_.startswith(r["class_prefix"]):
            continue
        return r
    return None


def _add_years(date: str, years: int) -> str:
    d = dt.date.fromisoformat(date)
    try:
        return d.replace(year=d.year + years).isoformat()
    except ValueError:  # 29 February in a year that has none
        return d.replace(year=d.year + years, day=28).isoformat()


def schedule(m: Manifest, d: Document, policy: Mapping[str, Any], *,
             today: str) -> dict[str, Any]:
    """When a document's retention ends, and why: rule, event, event date, end date (or waiting).

    A pure function of its arguments; ``today`` is ``YYYY-MM-DD``.
    """
    r = rule_for(policy, m, d)
    row: dict[str, Any] = {"number": d.number, "dossier": m.number, "category": d.category}
    if r is None:
        return {**row, "rule": None, "status": "no-rule"}
    ev = r["event"]
    when = {"document-date": d.date, "dossier-closed": m.closed}.get(ev) or (d.events or {}).get(ev)
    row.update(rule=r["name"], event=ev, years=r["years"], event_date=when)
    if when is None:
        return {**row, "until": None, "status": "waiting"}
    until = _add_years(when, r["years"])
    return {**row, "until": until, "status": "due" if until <= today else "kept"}


def report(v: Vault, *, due: bool = False, upcoming: int | None = None) -> list[dict[str, Any]]:
    """Retention of every live document; ``due`` keeps what may be destroyed now, ``upcoming`` what
    becomes due within that many days. Held dossiers are marked and never listed as due."""
    held = held_dossiers(v)
    today = v.clock.today_date()
    horizon = (today + dt.timedelta(days=upcoming)).isoformat() if upcoming is not None else None
    rows = []
    for m in iter_manifests(v):
        for d in m.documents:
            if d.is_destroyed:
                continue
            row = schedule(m, d, v.policy.data, today=today.isoformat())
            if m.id in held and row["status"] == "due":
                row["status"] = "held"
            if due and row["status"] != "due":
                continue
            if horizon and not (row.get("until") and row["until"] <= horizon and row["status"] != "held"):
                continue
            rows.append(row)
    return rows


def retained_records(v: Vault) -> dict[str, frozenset[str] | None]:
    """What retention still keeps, for backups: dossier id -> SHA-256 of each record file whose
    retention has not ended (the live documents' ciphertext, and the manifest the history last wrote
    that names them), or None for a dossier whose manifest cannot be read here (then all of it is kept).

    A document is kept until its rule's end date has passed — the same test that makes a destruction
    without an override refuse it — and a destroyed one is never kept (its keys are gone).
    """
    out: dict[str, frozenset[str] | None] = {}
    st = authority.state(v)
    mem = members.all_members(v)
    today = v.clock.today()
    for dossier_id, fact in sorted(st["dossiers"].items()):
        if fact["destroyed"]:
            continue
        try:
            m = load_manifest(v, dossier_id, member_records=mem)
        except (VaultError, OSError):
            out[dossier_id] = None  # damaged or missing here: the backups may hold its only good copy
            continue
        kept = {d.sha256 for d in m.documents
                if not d.is_destroyed and schedule(m, d, v.policy.data, today=today)["status"] != "due"}
        if kept:
            manifest = st["files"].get(f"dossiers/{dossier_id}/manifest.toml")
            out[dossier_id] = frozenset(kept | ({manifest[0]} if manifest and manifest[0] else set()))
    return out
