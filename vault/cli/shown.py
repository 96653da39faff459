"""How the command line shows names as people write them and recorded times in the office's zone.

Members as ``张三 (zhangsan)``, departments, business types and classes by the names the policy gives
them (``销售部``), recorded UTC times in the office's zone. Text output only: ``--json`` and every
record keep ids and UTC. ``Ctx`` inherits ``Shown``.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from vault.errors import VaultError

if TYPE_CHECKING:
    from vault.archive.vault import Vault

#: Keys of a command's data that name a member, a department, business type or class (``humane``).
MEMBER_KEYS = {"by", "member", "requester", "grantee", "borrower"}
LABEL_KEYS = {"dept": "department", "business": "business type", "class": "class"}


class Shown:
    """Display helpers of ``Ctx``: they read the vault the command opened."""

    _vault: Vault | None
    _members: dict[str, str | None] | None

    @property
    def vault(self) -> Vault:  # pragma: no cover  (Ctx's)
        raise NotImplementedError

    def who(self, name: str | None) -> str:
        """A member as people read them: ``张三 (zhangsan)``, or the name alone."""
        if not name:
            return ""
        if self._members is None:
            from vault.archive import members

            try:
                self._members = members.member_names(self.vault)
            except VaultError:  # a damaged history: show ids (check and audit verify report it)
                self._members = {}
        from vault.store import names

        return names.shown(name, self._members.get(name))

    def label(self, kind: str, ident: str | None) -> str:
        """A department, business type (``kind``) or class path by its name in the policy."""
        if not ident:
            return ""
        from vault.archive import labels

        try:
            data = self.vault.policy.data
        except VaultError:
            return ident
        return labels.class_label(data, ident) if kind == "class" else labels.label(data, kind, ident)

    def humane(self, value: Any) -> Any:
        """``value`` (a command's data) with members, departments, business types and classes by
        their display names, for text output; unchanged when no vault has been opened."""
        if self._vault is None:
            return value
        if isinstance(value, list):
            return [self.humane(x) for x in value]
        if not isinstance(value, dict):
            return value
        out = {}
        for k, x in value.items():
            if isinstance(x, str) and (k in MEMBER_KEYS or k.endswith("_by")):
                x = self.who(x)
            elif isinstance(x, str) and k in LABEL_KEYS:
                x = self.label(LABEL_KEYS[k], x)
            else:
                x = self.humane(x)
            out[k] = x
        return out

    def ident(self, kind: str, text: str | None) -> str | None:
        """The id a typed department, business type, class or member names (an id, or a display
        name: ``销售部`` -> ``sales``); None stays None."""
        if text is None:
            return None
        if kind == "member":
            from vault.archive import members

            return members.resolve_member(self.vault, text)
        from vault.archive import labels

        if kind == "class":
            return labels.resolve_class(self.vault.policy.data, text)
        return labels.resolve_name(self.vault, kind, text)

    @staticmethod
    def when(stamp: str | None) -> str:
        """A recorded UTC time in the office's time zone."""
        return local_time(stamp) if stamp else ""


def columns(text: str) -> int:
    """Terminal columns ``text`` takes: two for a wide (Han, kana, hangul, full-width) character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


def pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns: a Han character takes two, so ``str.ljust``
    would misalign a table of names written in Chinese."""
    return text + " " * max(0, width - columns(text))


def local_time(text: str) -> str:
    """A recorded UTC time (RFC 3339) as the office reads it, in its time zone; other text unchanged."""
    from vault import clock

    return clock.local(text)
