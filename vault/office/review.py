"""Periodic review of dossiers: intervals per class, signed review records, and what is due [R-3.5.1].

A dossier's last review is its ``created`` date until a review is recorded. Reviews are signed
records ``reviews/<dossier-id>/<seq>.toml`` (``schemas/review.schema.json``). A free-text note may
name the customer, so it is sealed under a new key in the dossier's own key table, like the profile:
whoever can read the dossier can read its notes, and destroying the dossier shreds them. A review with the
outcome ``needs-update`` restarts the interval but keeps the dossier listed until a later review
finds it ``verified``: the department has been told to act, and the list shows it has not yet.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from vault import clock
from vault.archive import authority, completeness, members
from vault.errors import ConflictError, FormatError, InputError, IntegrityError
from vault.office import access, dossier
from vault.store import records
from vault.store.keytable import seal, unseal

OUTCOMES = ("verified", "needs-update")
_SEQ_FILE = re.compile(r"([1-9][0-9]{0,8})\.toml\Z")


def _dir(v, dossier_id: str) -> Path:
    return v.root / "reviews" / dossier_id


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


def history(v, dossier_id: str, *, member_records: dict | None = None) -> list[dict[str, Any]]:
    """Every review record of a dossier, verified, oldest first (notes stay sealed)."""
    mem = member_records if member_records is not None else members.all_members(v)
    out = []
    prefix = f"reviews/{dossier_id}/"
    for what, (h, *_) in authority.state(v)["files"].items():
        match = _SEQ_FILE.match(what[len(prefix):]) if what.startswith(prefix) and h is not None else None
        if not match:
            continue
        try:
            rec = authority.load(v, what, schema="review")
        except FormatError as e:
            raise IntegrityError(str(e)) from None
        if rec["dossier"] != dossier_id or rec["seq"] != int(match.group(1)):
            raise IntegrityError(f"{what}: belongs to another dossier or place", hint="run 'vault check'")
        if rec["signature"]["by"] != rec["by"] or authority.signer_of(v, what) != rec["by"]:
            raise IntegrityError(f"{what}: not written by its reviewer")
        members.verify_by_member(v, rec, what=what, members=mem)
        out.append(rec)
    return sorted(out, key=lambda r: r["seq"])


def _date(stamp: str) -> dt.date:
    return dt.date.fromisoformat(stamp[:10])


def state(policy_data: Mapping[str, Any], m: Mapping[str, Any], reviews: list[dict[str, Any]],
          today: dt.date) -> dict[str, Any]:
    """A dossier's review state on ``today``: last review, interval, when it falls due, and whether
    it is stale or waiting for an update."""
    last = reviews[-1] if reviews else None
    last_date = _date(last["at"]) if last else dt.date.fromisoformat(m["created"])
    days = interval_days(policy_data, m["class"])
    due_on = last_date + dt.timedelta(days=days)
    needs_update = bool(last and last["outcome"] == "needs-update")
    return {
        "number": m["number"], "dept": m["dept"], "class": m["class"],
        "last_review": last_date.isoformat(), "last_outcome": last["outcome"] if last else None,
        "interval_days": days, "due_on": due_on.isoformat(),
        "stale": due_on <= today, "stale_since": due_on.isoformat() if due_on <= today else None,
        "needs_update": needs_update, "needs_update_since": last_date.isoformat() if needs_update else None,
    }


def due(v, *, dept: str | None = None, today: str | dt.date | None = None,
        fields: Callable[[Mapping[str, Any]], list[str] | None] | None = None) -> list[dict[str, Any]]:
    """Open dossiers that need attention: stale (last review older than their class's interval),
    waiting for an update, or incomplete — each with since when, in archive-number order.

    Needs no key: categories come from the manifest. ``fields`` (see
    ``completeness.field_checker``) adds missing field names where the caller can read.
    """
    day = dt.date.fromisoformat(today) if isinstance(today, str) else (today or clock.now().date())
    mem = members.all_members(v)
    out = []
    for m in dossier.iter_manifests(v):
        if m["status"] != "open" or (dept is not None and m["dept"] != dept):
            continue
        row = state(v.policy.data, m, history(v, m["id"], member_records=mem), day)
        gaps = completeness.assess(v.policy.data, m, fields)
        row.update({k: gaps[k] for k in ("missing_categories", "missing_fields", "fields_checked",
                                         "incomplete_since")})
        row["incomplete"] = not gaps["complete"]
        if row["stale"] or row["needs_update"] or row["incomplete"]:
            out.append(row)
    return out


def list_due(actor, *, dept: str | None = None) -> list[dict[str, Any]]:
    """``vault review due``: :func:`due` for a member allowed ``review.read``, with field gaps where
    their keys open the dossier; audited."""
    actor.require("review.read")
    actor.audit("review.due")
    return due(actor.vault, dept=dept, fields=completeness.field_checker(actor))


def done(actor, number: str, outcome: str, note: str | None = None) -> dict[str, Any]:
    """Record that ``number`` was reviewed, ``verified`` or ``needs-update`` (which needs a note);
    returns the record without its sealed note."""
    actor.require("review.record", number=number)
    v = actor.vault
    if outcome not in OUTCOMES:
        raise InputError(f"unknown review outcome {outcome!r}", hint="use --verified or --needs-update")
    note = (note or "").strip()
    if outcome == "needs-update" and not note:
        raise InputError("a review that asks for an update needs a note saying what", hint="pass --note TEXT")
    dossier_id = dossier.resolve(v, number)
    with v.lock(exclusive=True):
        m = dossier.load_manifest(v, dossier_id)
        if m["status"] == "destroyed":
            actor.audit("review.record", outcome="refused", number=m["number"])
            raise ConflictError(f"dossier {m['number']} has been destroyed", hint="nothing left to review")
        seq = max((r["seq"] for r in history(v, dossier_id)), default=0) + 1
        rec: dict[str, Any] = {"format": 1, "dossier": dossier_id, "number": m["number"], "seq": seq,
                               "at": clock.stamp(), "by": actor.name, "outcome": outcome}
        files = {}
        table = None
        if note:
            # Free text may name the customer: sealed like the profile, so it is read with the
            # dossier's keys and crypto-shredded with them; table and record commit together.
            table = dossier.read_table(v, dossier_id, actor.read_identities())
            kid, blob = seal(note.encode(), table)
            rec.update(note_key=kid, note=base64.b64encode(blob).decode())
            dossier.write_table(v, table)
        signed = actor.sign(rec)
        records.validate(signed, "review", what=f"review {seq} of {m['number']}")
        d = _dir(v, dossier_id)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        files[f"reviews/{dossier_id}/{seq}.toml"] = records.dump_toml(signed)
        actor.commit("review.record", files, number=m["number"], ref=f"review-{seq}", obj=dossier_id)
        if table is not None:
            access.refresh_grant_keys(actor, dossier_id, table)
    return {k: rec[k] for k in ("number", "seq", "at", "by", "outcome")}


def read_note(actor, rec: Mapping[str, Any]) -> str | None:
    """The plaintext note of a review record, for a member whose keys open the dossier (audited)."""
    if "note" not in rec:
        return None
    if dossier.load_manifest(actor.vault, rec["dossier"])["status"] == "destroyed":
        raise ConflictError(f"dossier {rec['number']} has been destroyed; its review notes went with its keys")
    table = access.open_key_table(actor, rec["dossier"], number=rec["number"])
    actor.audit("review.note", number=rec["number"], ref=f"review-{rec['seq']}")
    blob = base64.b64decode(rec["note"])
    return unseal(blob, table, what=f"note of review {rec['seq']} of {rec['number']}").decode()
