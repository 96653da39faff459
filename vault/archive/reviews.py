"""Review records and review state: intervals per class, when a dossier falls due, what needs attention [R-3.5.1]."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from vault import clock
from vault.archive import authority, committed, completeness, grants, manifests, members, recordtimes
from vault.archive.manifestrecord import Manifest
from vault.archive.states import DossierStatus
from vault.errors import FormatError, IntegrityError
from vault.i18n import N_
from vault.store.keytable import open_field

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

_SEQ_FILE = re.compile(r"([1-9][0-9]{0,8})\.toml\Z")


def _dir(v: Vault, dossier_id: str) -> Path:
    return v.layout.review(dossier_id, 1).parent


def interval_days(policy_data: Mapping[str, Any], klass: str) -> int:
    """The review interval of a class path: its longest matching prefix in ``review.classes``, else
    ``review.default_days``. Prefixes match whole segments (``enterprise`` covers
    ``enterprise/network-services/2026``, not ``enterprises``)."""
    cfg = policy_data.get("review", {})
    best, days = -1, int(cfg.get("default_days", 365))
    parts = klass.split("/")
    for prefix, n in cfg.get("classes", {}).items():
        pre = prefix.strip("/").split("/")
        if parts[: len(pre)] == pre and len(pre) > best:
            best, days = len(pre), int(n)
    return days


def history(v: Vault, dossier_id: str, *, member_records: dict | None = None) -> list[dict[str, Any]]:
    """Every review record of a dossier, verified, oldest first (notes stay sealed)."""
    mem = member_records if member_records is not None else members.all_members(v)
    out = []
    prefix = f"reviews/{dossier_id}/"
    # The reviews the history committed: a file no entry wrote is no review (``vault check`` names it).
    for what, (h, *_) in authority.state(v)["files"].items():
        match = _SEQ_FILE.match(what[len(prefix):]) if what.startswith(prefix) and h is not None else None
        if not match:
            continue
        try:
            rec = committed.load(v, what, schema="review")
        except FormatError as e:
            raise IntegrityError.from_error(e) from None
        if rec["dossier"] != dossier_id or rec["seq"] != int(match.group(1)) \
                or rec["number"] != (authority.state(v)["dossiers"].get(dossier_id) or {}).get("number"):
            raise IntegrityError(N_("{what}: belongs to another dossier or place"), hint=N_("run 'vault check'"), what=what)
        if rec["signature"]["by"] != rec["by"] or (committed.signer_of(v, what) != rec["by"]
                                                   and not committed.adopted(v, what)):
            raise IntegrityError(N_("{what}: not written by its reviewer"), what=what)
        members.verify_by_member(v, rec, what=what, members=mem)
        recordtimes.stamped(v, what, rec["at"])
        out.append(rec)
    return sorted(out, key=lambda r: r["seq"])


def _date(stamp: str) -> dt.date:
    # A review is dated in the office's time zone: one recorded at 07:30 in Beijing is that day's.
    return clock.local_date(stamp)


def state(policy_data: Mapping[str, Any], m: Manifest, reviews: list[dict[str, Any]],
          today: dt.date) -> dict[str, Any]:
    """A dossier's review state on ``today``: last review, interval, when it falls due, and whether
    it is stale or waiting for an update."""
    last = reviews[-1] if reviews else None
    last_date = _date(last["at"]) if last else dt.date.fromisoformat(m.created)
    days = interval_days(policy_data, m.class_)
    due_on = last_date + dt.timedelta(days=days)
    needs_update = bool(last and last["outcome"] == "needs-update")
    return {
        "number": m.number, "dept": m.dept, "class": m.class_,
        "last_review": last_date.isoformat(), "last_outcome": last["outcome"] if last else None,
        "interval_days": days, "due_on": due_on.isoformat(),
        "stale": due_on <= today, "stale_since": due_on.isoformat() if due_on <= today else None,
        "needs_update": needs_update, "needs_update_since": last_date.isoformat() if needs_update else None,
    }


def due(v: Vault, *, dept: str | None = None, today: str | dt.date | None = None,
        fields: Callable[[Manifest], list[str] | None] | None = None) -> list[dict[str, Any]]:
    """Open dossiers that need attention: stale (last review older than their class's interval),
    waiting for an update, or incomplete — each with since when, in archive-number order.

    Needs no key: categories come from the manifest. ``fields`` (see
    ``completeness.field_checker``) adds missing field names where the caller can read.
    """
    day = dt.date.fromisoformat(today) if isinstance(today, str) else (today or v.clock.today_date())
    mem = members.all_members(v)
    out = []
    for m in manifests.iter_manifests(v):
        if m.status != DossierStatus.OPEN or (dept is not None and m.dept != dept):
            continue
        row = state(v.policy.data, m, history(v, m.id, member_records=mem), day)
        gaps = completeness.assess(v.policy.data, m, fields)
        row.update({k: gaps[k] for k in ("missing_categories", "missing_fields", "fields_checked",
                                         "incomplete_since")})
        row["incomplete"] = not gaps["complete"]
        if row["stale"] or row["needs_update"] or row["incomplete"]:
            out.append(row)
    return out


def list_due(actor: Actor, *, dept: str | None = None) -> list[dict[str, Any]]:
    """``vault review due``: :func:`due` for a member allowed ``review.read``, with field gaps where
    their keys open the dossier; audited."""
    actor.require("review.read")
    actor.audit("review.due")
    v = actor.vault
    rows = due(v, dept=dept, fields=completeness.field_checker(actor))
    mem = members.all_members(v)
    for row in rows:
        # The last review's note says what to update: shown to whoever's keys open the dossier.
        hist = history(v, manifests.resolve(v, row["number"]), member_records=mem)
        if hist and "note" in hist[-1]:
            last = hist[-1]
            readable = completeness.can_read(actor, last["dossier"]) \
                and v.layout.key_table(last["dossier"]).exists()
            row["last_note"] = note_text(actor, last) if readable else None
            if row["last_note"] is None:
                row.setdefault("sealed_texts", []).append("last_note")
    return rows


def note_text(actor: Actor, rec: Mapping[str, Any]) -> str:
    """The plaintext note of a review record for a member whose keys open the dossier (audited)."""
    table = grants.open_key_table(actor, rec["dossier"], number=rec["number"])
    actor.audit("review.note", number=rec["number"], ref=f"review-{rec['seq']}")
    return open_field(rec["note"], table, what=f"note of review {rec['seq']} of {rec['number']}").decode()
