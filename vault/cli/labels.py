"""Words around the data in text output (states, field names, report lines, padding), in the reader's language.

``--json`` and the records keep the English words; only what a person reads is translated.
"""

from __future__ import annotations

from typing import Any

from vault.i18n import N_, _


def state(value: Any) -> str:
    """A state or status word of the records (``open``, ``pending``, ``active`` …) in the reader's language.

    The records and ``--json`` keep the English word; only text output shows the translation."""
    from vault.i18n import pgettext

    labels = {
        "open": pgettext("state", "open"), "closed": pgettext("state", "closed"),
        "destroyed": pgettext("state", "destroyed"), "pending": pgettext("state", "pending"),
        "approved": pgettext("state", "approved"), "denied": pgettext("state", "denied"),
        "granted": pgettext("state", "granted"), "active": pgettext("state", "active"),
        "expired": pgettext("state", "expired"), "revoked": pgettext("state", "revoked"),
        "used": pgettext("state", "used"), "requested": pgettext("state", "requested"),
        "executing": pgettext("state", "executing"), "executed": pgettext("state", "executed"),
        "cancelled": pgettext("state", "cancelled"), "due": pgettext("state", "due"),
        "waiting": pgettext("state", "waiting"), "held": pgettext("state", "held"),
        "no-rule": pgettext("state", "no-rule"), "removed": pgettext("state", "removed"),
        "verified": pgettext("state", "verified"), "needs-update": pgettext("state", "needs-update"),
        "rejected": pgettext("state", "rejected"), "accepted": pgettext("state", "accepted"),
    }
    return labels.get(value, str(value)) if isinstance(value, str) else str(value)


#: Labels of record fields in text output (``--json`` keeps the keys).
FIELD_LABELS: dict[str, str] = {
    "number": N_("number"),
    "customer_type": N_("customer type"),
    "business": N_("business"),
    "dept": N_("dept"),
    "class": N_("class"),
    "created": N_("created"),
    "status": N_("status"),
    "revision": N_("revision"),
    "documents": N_("documents"),
    "current_documents": N_("current documents"),
    "destroyed_documents": N_("destroyed documents"),
    "profile": N_("profile"),
    "name": N_("name"),
    "address": N_("address"),
    "contact": N_("contact"),
    "legal_rep": N_("legal rep"),
    "aliases": N_("aliases"),
    "notes": N_("notes"),
    "roles": N_("roles"),
    "key": N_("key"),
    "added_at": N_("added at"),
    "added_by": N_("added by"),
    "removed_at": N_("removed at"),
    "removed_by": N_("removed by"),
    "target": N_("target"),
    "requested_by": N_("requested by"),
    "requested_at": N_("requested at"),
    "state": N_("state"),
    "approved_by": N_("approved by"),
    "approved_at": N_("approved at"),
    "executed_by": N_("executed by"),
    "executed_at": N_("executed at"),
    "destroyed": N_("destroyed"),
    "reason": N_("reason"),
    "override_reason": N_("override reason"),
    "closing_reason": N_("closing reason"),
    "closed_by": N_("closed by"),
    "closed_at": N_("closed at"),
    "format": N_("format"),
    "dossier_number": N_("dossier number"),
    "whole_dossier": N_("whole dossier"),
    "manifest_revision": N_("manifest revision"),
    "undecryptable_from_backups_after": N_("undecryptable from backups after"),
    "destruction": N_("destruction"),
    "retention_overridden": N_("retention overridden"),
    "hold_checked_at": N_("hold checked at"),
    "held": N_("held"),
    "sha256": N_("sha256"),
    "size": N_("size"),
    "backup_targets": N_("backup targets"),
    "reached": N_("reached"),
    "removed": N_("removed"),
    "remirrored": N_("remirrored"),
    "error": N_("error"),
    "retention": N_("retention"),
    "rule": N_("rule"),
    "event": N_("event"),
    "customer": N_("customer"),
    "purpose": N_("purpose"),
    "last_note": N_("last note"),
    "kind": N_("kind"),
    "requester": N_("requester"),
    "dossier": N_("dossier"),
}


def field(key: str) -> str:
    """A record field's name as a label in the reader's language (``legal_rep`` -> ``legal rep``, 法定代表人)."""
    return _(FIELD_LABELS[key]) if key in FIELD_LABELS else key.replace("_", " ")


def cell(text: Any, columns: int) -> str:
    """``text`` padded to ``columns`` terminal columns (a Chinese character takes two)."""
    s = str(text)
    return s + " " * max(columns - width(s), 0)


def width(text: str) -> int:
    """Terminal columns of ``text`` (a Chinese character takes two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def cut(text: str, columns: int) -> str:
    """``text`` shortened with "…" to at most ``columns`` terminal columns."""
    if width(text) <= columns:
        return text
    out, used = "", 0
    for c in text:
        w = width(c)
        if used + w > columns - 1:
            break
        out, used = out + c, used + w
    return out + "…"


def report_lines(problems: list, notes: list = ()) -> list[str]:  # type: ignore[assignment]
    """``problem: …`` and ``note: …`` lines of a check's report, in the reader's language."""
    from vault.i18n import render as tr

    return ([_("problem: {problem}").format(problem=tr(p)) for p in problems]
            + [_("note: {note}").format(note=tr(n)) for n in notes])


def problems_summary(problems: list) -> str:
    """``no problems`` or ``N problem(s)``."""
    from vault.i18n import ngettext

    if not problems:
        return _("no problems")
    return ngettext("{count} problem", "{count} problems", len(problems)).format(count=len(problems))
