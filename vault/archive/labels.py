"""Display names of departments, business types and classes, declared in the policy's ``[names]``.

A department (``sales``), business type (``network-services``) or class path
(``enterprise/network-services/2026``) is an id in manifests, member entries and file names; the
policy gives each a name in the office's own script (``销售部``, ``网络服务``). Lookups accept either;
printing shows the name. The names are part of the signed policy, so only a supervisor's policy
update changes them, and ``check_policy`` refuses a policy in which two of a kind look alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from vault.errors import InputError, NotFoundError
from vault.i18n import N_
from vault.store import names

if TYPE_CHECKING:
    from vault.archive.handle import Vault

#: kind -> the policy's ``[names.<section>]``.
SECTIONS = {"department": "departments", "business type": "business", "class": "classes"}


def table(policy_data: Mapping[str, Any], kind: str) -> dict[str, str]:
    """The policy's names of ``kind``: id -> display name (empty when it names none)."""
    return dict((policy_data.get("names") or {}).get(SECTIONS[kind]) or {})


def resolve_name(v: Vault, kind: str, text: str) -> str:
    """The id of the department or business type ``text`` names: an id as given, or the one whose
    display name it is (``销售部`` -> ``sales``). An id need not be listed in the policy."""
    known = table(v.policy.data, kind)
    if text in known or (names.is_id(text) and text not in known.values()):
        return text
    try:
        return names.resolve(kind, text, dict(known), listing="'vault policy show'")
    except NotFoundError:
        raise InputError(N_("no {kind} {text!r}"), hint=N_("use an id (lowercase letters, digits, '.', '_', '-') or a "
                                                           "name the policy gives in [names.{section}]"),
                         kind=kind, text=text, section=SECTIONS[kind]) from None


def resolve_class(policy_data: Mapping[str, Any], text: str) -> str:
    """A class path typed by its display name (``企业客户/网络服务``) or as it is; the longest named
    prefix whose display form starts ``text`` is replaced by its path."""
    best = ""
    for path in table(policy_data, "class"):
        shown = class_label(policy_data, path)
        if (text == shown or text.startswith(shown + "/")) and len(path) > len(best):
            best = path
    return best + text[len(class_label(policy_data, best)):] if best else text


def label(policy_data: Mapping[str, Any], kind: str, ident: str) -> str:
    """What to print for the department or business type ``ident``: its display name, or the id."""
    return table(policy_data, kind).get(ident, ident)


def class_label(policy_data: Mapping[str, Any], path: str) -> str:
    """A class path as people read it: each segment replaced by the name the policy gives that prefix
    (``enterprise/network-services/2026`` -> ``企业客户/网络服务/2026``), else kept."""
    known = table(policy_data, "class")
    parts = path.split("/")
    return "/".join(known.get("/".join(parts[: i + 1]), seg) for i, seg in enumerate(parts))


def check_policy(policy_data: Mapping[str, Any], *, strict: bool = True) -> None:
    """Refuse a policy whose display names are not valid and normalised, or in which two of one kind
    (or a name and another's id) look alike — a department could otherwise pass for another.
    ``strict=False`` (the history's replay) lets code points this Python's Unicode does not know pass,
    so that a newer Unicode on the writer's machine does not make an entry count on one machine only."""
    for kind in SECTIONS:
        known = table(policy_data, kind)
        for display in known.values():
            if names.display_name(display, kind=kind, strict=strict) != display:
                raise InputError(N_("the {kind} name {display!r} is not in normal form"),
                                 hint=N_("write it as {normal!r}"), kind=kind, display=display,
                                 normal=names.display_name(display, kind=kind, strict=strict))
        taken = {i: [i, d] for i, d in known.items()}
        for ident, display in known.items():
            others = [o for o in names.clash(display, taken) if o != ident]
            others += [o for o in names.clash(ident, taken) if o != ident]
            if others:
                raise InputError(N_("the {kind} {name} looks like {others}"),
                                 hint=N_("give each {kind} a name that reads differently"), kind=kind,
                                 name=names.shown(ident, display), others=", ".join(sorted(set(others))))
