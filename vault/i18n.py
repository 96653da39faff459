"""Languages: gettext catalogues shipped inside the package, the reader's choice, and locale formatting.

Simplified Chinese comes first and English second. A preference list (from a browser's
``Accept-Language`` or from the environment) picks the first language we have; anything else falls
back to the first of ``LANGUAGES``. Catalogues are ``vault/locale/<lang>/LC_MESSAGES/vault.mo``,
compiled from the ``.po`` beside them with ``dev/i18n compile`` (a test checks they agree).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import os
import re
from functools import lru_cache
from importlib import resources
from typing import Iterable, Mapping

from vault import clock

DOMAIN = "vault"
LANGUAGES = ("zh_Hans", "en")
"""Languages with a catalogue, in order of preference; the first is the default."""
ENV_VARS = ("VAULT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
"""Where ``from_environment`` looks, first match first (``LANGUAGE`` may list several, colon-separated)."""

_TAG_RE = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*\Z")
_MAX_TAGS = 20  # a hostile Accept-Language with thousands of entries costs no more than this


def language_of(tag: str) -> str | None:
    """The catalogue language for one tag (``zh-CN``, ``zh_TW.UTF-8``, ``en-GB``), or None."""
    tag = tag.split(".")[0].split("@")[0].strip()
    if not _TAG_RE.match(tag):
        return None
    parts = re.split(r"[-_]", tag.lower())
    if parts[0] == "zh":
        # Every Chinese reader gets the Simplified catalogue: there is no Traditional one yet, and
        # Simplified Chinese is closer for them than English.
        return "zh_Hans"
    if parts[0] == "en":
        return "en"
    return None


def parse_accept_language(header: str | None) -> list[str]:
    """The tags of an ``Accept-Language`` header, best first (q=0 dropped, malformed entries ignored)."""
    weighted = []
    for i, item in enumerate((header or "").split(",")[:_MAX_TAGS]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        m = re.match(r"\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*\Z", params)
        if params and not m:
            continue
        if m:
            q = float(m.group(1))
        if tag and q > 0:
            weighted.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(preferences: Iterable[str]) -> str:
    """The first language of ``preferences`` that has a catalogue, else the default."""
    for tag in preferences:
        if tag == "*":
            break
        lang = language_of(tag)
        if lang:
            return lang
    return LANGUAGES[0]


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language for a command line: ``VAULT_LANG``, then ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``."""
    env = os.environ if environ is None else environ
    prefs: list[str] = []
    for var in ENV_VARS:
        value = env.get(var, "")
        if var == "LANGUAGE":
            prefs += [p for p in value.split(":") if p]
        elif value and value not in ("C", "POSIX") and not value.startswith("C."):
            prefs.append(value)
    return negotiate(prefs)


@lru_cache(maxsize=None)
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of ``lang`` (one of LANGUAGES) from inside the package."""
    if lang not in LANGUAGES:
        raise ValueError(f"no catalogue for {lang!r}")
    mo = resources.files("vault").joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.mo")
    try:
        data = mo.read_bytes()
    except FileNotFoundError:
        return gettext.NullTranslations()  # the source language needs no catalogue to work
    return gettext.GNUTranslations(io.BytesIO(data))


def gettext_for(lang: str):
    """``_`` for one language."""
    return translations(lang).gettext


def format_datetime(when: dt.datetime, lang: str) -> str:
    """A moment in the reader's locale, in the office's time zone and naming it (the reader's own zone
    is unknown; the office's is the one its letters and calls use)."""
    from babel.dates import format_datetime as fmt

    zone = clock.current_zone()
    return fmt(when.astimezone(zone), "long", tzinfo=zone, locale=lang)


def format_size(size: int, lang: str) -> str:
    """Bytes in the reader's locale, in decimal units (1 MB = 1,000,000 bytes)."""
    from babel.units import format_unit

    for unit, scale in (("gigabyte", 10**9), ("megabyte", 10**6), ("kilobyte", 10**3)):
        if size >= scale:
            return format_unit(size / scale, f"digital-{unit}", length="short", locale=lang, format="#,##0.#")
    return format_unit(size, "digital-byte", length="long", locale=lang)  # "26 bytes", not "26 byte"


def format_number(n: int, lang: str) -> str:
    from babel.numbers import format_decimal

    return format_decimal(n, locale=lang)
