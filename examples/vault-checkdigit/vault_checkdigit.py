"""A vault numbering scheme, ``example.com/checkdigit``: sequence numbers with an ISO 7064 MOD 97-10 check."""

from __future__ import annotations

import re
from collections.abc import Mapping

from vault.hookspecs import hookimpl

NAME = "example.com/checkdigit"
_PREFIX = re.compile(r"[A-Z]{1,8}\Z")


def check_digits(digits: str) -> str:
    """The two ISO 7064 MOD 97-10 check digits for a string of decimal digits (as in IBAN)."""
    return f"{98 - int(digits + '00') % 97:02d}"


def is_valid(number: str) -> bool:
    """Whether ``number`` (``PREFIX-DIGITSCC``) carries the right check digits."""
    _, _, body = number.rpartition("-")
    return body.isdigit() and len(body) > 2 and int(body) % 97 == 1


class CheckDigitScheme:
    """``<prefix>-<sequence, zero-padded to width><two check digits>``, e.g. ``A-0000004269``."""

    # It needs no classification fact: the vault then gives it none.
    facts = frozenset()

    def __init__(self, prefix: str, width: int) -> None:
        self.prefix, self.width = prefix, width

    def number(self, *, sequence: int, facts: Mapping[str, str]) -> str:
        """The number for ``sequence``: injective because the digits are the sequence itself."""
        digits = f"{sequence:0{self.width}d}"
        return f"{self.prefix}-{digits}{check_digits(digits)}"


def factory(options: Mapping[str, object]) -> CheckDigitScheme:
    """Build the scheme; options ``prefix`` (1-8 capital letters, default ``A``) and ``width`` (4-20, default 8)."""
    unknown = set(options) - {"prefix", "width"}
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    prefix, width = options.get("prefix", "A"), options.get("width", 8)
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ValueError(f"prefix must be 1-8 capital letters, not {prefix!r}")
    if not isinstance(width, int) or not 4 <= width <= 20:
        raise ValueError(f"width must be an integer from 4 to 20, not {width!r}")
    return CheckDigitScheme(prefix, width)


@hookimpl
def vault_register_numbering_schemes(register):
    """Register ``example.com/checkdigit``."""
    register(NAME, factory)
