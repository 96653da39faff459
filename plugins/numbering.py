"""Built-in numbering scheme ``standard``: archive numbers from a declared pattern such as E-2026-000042 [R-3.2.2]."""

from __future__ import annotations

import datetime
import re
import string
from collections.abc import Mapping
from typing import Any, Callable

from vault.hookspecs import hookimpl
from vault.i18n import Message, N_

#: The pattern used when the vault's configuration names none.
DEFAULT_PATTERN = "{type}-{year}-{seq:06d}"
#: The fields a pattern may use.
FIELDS = frozenset({"type", "year", "seq"})
_TYPE_LETTER = {"enterprise": "E", "individual": "I"}
# Zero-padded width and an integer presentation only: a space-padded width would put whitespace in
# the number, and precision, "c" or a conversion could make two sequences format alike.
_SEQ_SPEC = re.compile(r"(0[1-9][0-9]?)?[dxXob]?\Z")


class StandardScheme:
    """Formats ``pattern`` with ``type`` (E or I), ``year`` (of ``created``) and ``seq`` (the sequence)."""

    facts = frozenset({"customer_type", "created"})

    def __init__(self, pattern: str = DEFAULT_PATTERN) -> None:
        self.pattern = validate_pattern(pattern)

    def number(self, *, sequence: int, facts: Mapping[str, str]) -> str:
        """Return the archive number for ``sequence``."""
        return self.pattern.format(type=type_letter(facts), year=year_of(facts), seq=sequence)


def type_letter(facts: Mapping[str, str]) -> str:
    """``E`` for an enterprise customer, ``I`` for an individual [R-3.2.1]."""
    customer_type = facts["customer_type"]
    if customer_type not in _TYPE_LETTER:
        raise ValueError(Message(N_("customer_type must be enterprise or individual, not {customer_type!r}"), customer_type=customer_type))
    return _TYPE_LETTER[customer_type]


def year_of(facts: Mapping[str, str]) -> str:
    """The four-digit year of the ISO date ``created``."""
    created = facts["created"]
    try:
        return f"{datetime.date.fromisoformat(created[:10]).year:04d}"
    except (TypeError, ValueError):
        raise ValueError(Message(N_("created must be an ISO date (YYYY-MM-DD), not {created!r}"), created=created)) from None


def validate_pattern(pattern: object) -> str:
    """Return ``pattern`` if it makes a valid, injective numbering rule; raise ``ValueError`` saying why not."""
    if not isinstance(pattern, str):
        raise ValueError(Message(N_("pattern must be a string, not {name__}"), name__=type(pattern).__name__))
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(Message(N_("pattern {pattern!r} is not a valid format string: {exc}"), pattern=pattern, exc=exc)) from None
    has_seq = False
    for literal, field, spec, conversion in parsed:
        if re.search(r"[\s/]", literal) or not literal.isascii() or not literal.isprintable():
            raise ValueError(Message(N_("pattern {pattern!r} may not contain whitespace, '/' or non-ASCII text"), pattern=pattern))
        if field is None:
            continue
        if field not in FIELDS:
            raise ValueError(Message(N_("pattern {pattern!r} uses unknown field {{{field}}}; known: type, year, seq"), pattern=pattern, field=field))
        if conversion or (field != "seq" and spec):
            raise ValueError(Message(N_("pattern {pattern!r}: only {{seq}} takes a format spec, and none takes !conversion"), pattern=pattern))
        if field == "seq":
            if not _SEQ_SPEC.match(spec or ""):
                raise ValueError(Message(N_("pattern {pattern!r}: {{seq:{spec}}} must be a zero-padded integer like {{seq:06d}}"), pattern=pattern, spec=spec))
            has_seq = True
    if not has_seq:
        # Without the sequence two dossiers of the same type and year would get the same number.
        raise ValueError(Message(N_("pattern {pattern!r} must contain {{seq}} (e.g. {DEFAULT_PATTERN!r}) to be unique"), pattern=pattern, DEFAULT_PATTERN=DEFAULT_PATTERN))
    if len(pattern.format(type="E", year="2026", seq=10**9)) > 64:
        raise ValueError(Message(N_("pattern {pattern!r} gives numbers longer than 64 characters"), pattern=pattern))
    return pattern


def standard(options: Mapping[str, object]) -> StandardScheme:
    """Build the ``standard`` scheme; ``options``: ``pattern`` (default ``{type}-{year}-{seq:06d}``)."""
    unknown = set(options) - {"pattern"}
    if unknown:
        raise ValueError(Message(N_("unknown option(s) for numbering scheme standard: {unknown}"), unknown=', '.join(sorted(unknown))))
    return StandardScheme(options.get("pattern", DEFAULT_PATTERN))  # type: ignore[arg-type]


@hookimpl
def vault_register_numbering_schemes(register: Callable[[str, Any], None]) -> None:
    """Register the ``standard`` numbering scheme."""
    register("standard", standard)
