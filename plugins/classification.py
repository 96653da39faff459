"""Built-in classifier ``standard``: customer type / business type / year, as [R-3.2.1] lists them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Callable

from vault.hookspecs import hookimpl
from vault_plugins.numbering import year_of
from vault.i18n import Message, N_

_CUSTOMER_TYPES = frozenset({"enterprise", "individual"})


def slugify(text: str) -> str:
    """A class-path segment for ``text``: ``[a-z0-9-]+``, distinct texts giving distinct segments where it can.

    Latin text loses its accents ("Réseau" -> "reseau"); text with other scripts keeps every character
    through IDNA-style punycode ("网络服务" -> "xn--...") so that two businesses never share a class by
    accident of transliteration.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    if stripped.isascii():
        folded = stripped
    slug = re.sub(r"[\W_]+", "-", folded).strip("-")
    if not slug:
        raise ValueError(Message(N_("{text!r} has no letters or digits to classify by"), text=text))
    if not slug.isascii():
        slug = "xn--" + slug.encode("punycode").decode("ascii")
    return slug


class StandardClassifier:
    """Classifies by ``customer_type``, ``business`` and the year of ``created``."""

    facts = frozenset({"customer_type", "business", "created"})

    def classify(self, *, facts: Mapping[str, str]) -> str:
        """Return ``<customer_type>/<business>/<year>``."""
        customer_type = facts["customer_type"]
        if customer_type not in _CUSTOMER_TYPES:
            raise ValueError(Message(N_("customer_type must be enterprise or individual, not {customer_type!r}"), customer_type=customer_type))
        return f"{customer_type}/{slugify(facts['business'])}/{year_of(facts)}"


def standard(options: Mapping[str, object]) -> StandardClassifier:
    """Build the ``standard`` classifier; it takes no options."""
    if options:
        raise ValueError(Message(N_("classifier standard takes no options, got: {options}"), options=', '.join(sorted(options))))
    return StandardClassifier()


@hookimpl
def vault_register_classifiers(register: Callable[[str, Any], None]) -> None:
    """Register the ``standard`` classifier."""
    register("standard", standard)
