"""Review notifications: each department's list of stale and incomplete dossiers, sent through a notifier [R-3.5.1].

A message names archive numbers, classes, dates, and the *names* of missing categories and fields —
cleartext manifest facts and policy words, never a value from a sealed profile or document.
"""

from __future__ import annotations

import inspect
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from vault import i18n, plugins
from vault.archive import completeness, labels
from vault.archive import reviews
from vault.errors import PermissionDeniedError, PluginError, VaultError
from vault.i18n import N_
from vault.store import names

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


def _lines(row: Mapping[str, Any], _: Callable[[str], str]) -> list[str]:
    out = [f"{row['number']}  {row['class']}"]
    if row["stale"]:
        out.append("  " + _("stale since {date} (last reviewed {last}, every {days} days)").format(
            date=row["stale_since"], last=row["last_review"], days=row["interval_days"]))
    if row["needs_update"]:
        out.append("  " + _("needs an update since {date} (the last review asked for one)").format(
            date=row["needs_update_since"]))
    if row["incomplete"]:
        gaps = []
        if row["missing_categories"]:
            gaps.append(_("missing categories: {names}").format(names=", ".join(row["missing_categories"])))
        if row["missing_fields"]:
            gaps.append(_("missing fields: {names}").format(names=", ".join(row["missing_fields"])))
        out.append("  " + _("incomplete since {date}: {gaps}").format(date=row["incomplete_since"], gaps="; ".join(gaps)))
    if not row["fields_checked"]:
        out.append("  (" + _(completeness.FIELDS_NEED_READ) + ")")
    if "last_note" in row:
        # The note is free text sealed to the dossier's readers; a mailbox is not one of them.
        out.append("  " + _("the last review left a note: 'vault review due' shows it to those who may read the dossier"))
    return out


def compose(dept: str, rows: Sequence[Mapping[str, Any]], *, today: str,
            lang: str | None = None) -> tuple[str, str]:
    """The subject and plain-text body telling ``dept`` which of its dossiers need attention, in ``lang``
    (default: the language of the environment, as for the command line)."""
    tr = i18n.translations(lang or i18n.current_language())
    _ = tr.gettext
    n = len(rows)
    subject = tr.ngettext("Archive review {today}: {count} dossier of {dept} needs attention",
                          "Archive review {today}: {count} dossiers of {dept} need attention", n).format(
        today=today, count=n, dept=dept)
    body = [_("Periodic review of the customer archive on {today} [R-3.5.1, R-1.3.2].").format(today=today),
            _("These dossiers of department {dept} are due for review or incomplete.").format(dept=dept),
            _("Please verify them and bring the missing material to the archive department."), ""]
    for row in rows:
        body += _lines(row, _)
    return subject, "\n".join(body) + "\n"


def build_notifier(name: str, options: Mapping[str, Any] | None = None, *,
                   pm: plugins.VaultPluginManager | None = None) -> plugins.PluginObject:
    """Build the registered notifier ``name`` with ``options``; PluginError if none is installed."""
    pm = pm or plugins.get_plugin_manager()
    registration = plugins.notifiers(pm).get(name)
    if registration is None:
        raise PluginError(N_("notifier {name!r} is not installed"), hint=N_("see 'vault plugins list'"), name=name)
    return registration(dict(options or {}))


def _at(notifier: plugins.PluginObject, actor: Actor) -> dict[str, Any]:
    """``{"at": the time of this run}`` for a notifier whose ``notify`` takes ``at`` (or ``**kwargs``),
    so that what it dates is dated by the vault's clock; nothing for one written before ``at`` was."""
    try:
        params = inspect.signature(notifier.wrapped.notify).parameters.values()
    except (AttributeError, TypeError, ValueError):
        return {}
    takes = any(p.name == "at" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return {"at": actor.clock.now()} if takes else {}


def _check_dir(v: Vault, options: Mapping[str, Any]) -> None:
    # A report written into the vault would be swept into backups and outlive its purpose; and the
    # vault directory is for the vault's own files only.
    if "dir" in options:
        real = Path(os.path.abspath(options["dir"])).resolve()
        root = v.root.resolve()
        if real == root or real.is_relative_to(root):
            raise PermissionDeniedError(N_("refusing to write notifications inside the vault directory"),
                                        hint=N_("choose a report directory outside the vault"))


def send(actor: Actor, name: str, options: Mapping[str, Any] | None = None, *, dept: str | None = None,
         pm: plugins.VaultPluginManager | None = None, lang: str | None = None) -> list[dict[str, Any]]:
    """``vault review notify``: send each department with something due its list through notifier
    ``name``; each message is an audit entry. Returns what was sent: department, numbers."""
    actor.require("review.read")
    options = dict(options or {})
    _check_dir(actor.vault, options)
    notifier = build_notifier(name, options, pm=pm)
    rows = reviews.list_due(actor, dept=dept)
    by_dept: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_dept[row["dept"]].append(row)
    today, sent = actor.clock.today(), []
    pol = actor.vault.policy.data
    for d in sorted(by_dept):
        # The message is for people: the department and classes by the names the policy gives them.
        shown = names.shown(d, labels.label(pol, "department", d))
        subject, body = compose(shown, [{**r, "class": labels.class_label(pol, r["class"])} for r in by_dept[d]],
                                today=today, lang=lang)
        ref = f"{d} via {name}"
        try:
            notifier.notify(department=d, subject=subject, body=body, **_at(notifier, actor))
        except VaultError:
            actor.audit("review.notify", outcome="failed", ref=ref)
            raise
        actor.audit("review.notify", ref=ref)
        sent.append({"dept": d, "numbers": [r["number"] for r in by_dept[d]]})
    return sent
