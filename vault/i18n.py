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
from typing import IO, Any, Callable, Iterable, Iterator, Mapping


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
    # A plain path beside this module (the package is installed as files): importlib.resources would
    # cost every command a few dozen imports, and every command imports this module.
    mo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale", lang, "LC_MESSAGES", f"{DOMAIN}.mo")
    try:
        with open(mo, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return gettext.NullTranslations()  # the source language needs no catalogue to work
    return gettext.GNUTranslations(io.BytesIO(data))


def gettext_for(lang: str) -> Callable[[str], str]:
    """``_`` for one language."""
    return translations(lang).gettext


def N_(msgid: str) -> str:
    """Mark ``msgid`` for the catalogue without translating it (it is translated where it is shown)."""
    return msgid


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(text: str, params: Mapping[str, Any]) -> str:
    return text.format_map(_Keep(params)) if params else text


class Message(str):
    """A catalogue id and the values of its ``{placeholders}``: the English text as a ``str``, any
    language by ``render``.

    The library builds these where it cannot know the reader's language (errors, report lines); being
    a ``str``, a Message goes into JSON and comparisons as its English text, and a front end renders
    it. A value that can itself be rendered (a Message, a VaultError) is rendered in the same language.
    A translation that does not fill (a lost or misspelt placeholder) falls back to English.
    """

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> "Message":
        if isinstance(msgid, Message):
            if not params:
                return msgid
            params = {**msgid.params, **params}
            msgid = msgid.msgid
        self = super().__new__(cls, _fill(msgid, {k: str(v) if hasattr(v, "render") else v for k, v in params.items()}))
        self.msgid = msgid
        self.params = params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (``check``'s worker processes send their findings) by its id and values, not as the
        # bare English text the default for a ``str`` would keep.
        return _message, (self.msgid, self.params)

    def render(self, gettext: Callable[[str], str]) -> str:
        values = {k: v.render(gettext) if hasattr(v, "render") else v for k, v in self.params.items()}
        text = gettext(self.msgid)
        try:
            import string  # here: only a rendered message with values needs it

            if values and any(f and f.split(".")[0].split("[")[0] not in values
                              for _, f, _, _ in string.Formatter().parse(text)):
                return str(self)  # a translation naming a value this message does not have
            return _fill(text, values)
        except (ValueError, IndexError, AttributeError, KeyError):
            return str(self)


def _message(msgid: str, params: dict[str, Any]) -> Message:
    return Message(msgid, **params)


def _env_key() -> tuple[str, ...]:
    return tuple(os.environ.get(v, "") for v in ENV_VARS)


@lru_cache(maxsize=8)
def _language_for(key: tuple[str, ...]) -> str:
    return from_environment(dict(zip(ENV_VARS, key)))


def current_language() -> str:
    """The command line's language, from the environment as it is now."""
    return _language_for(_env_key())


def _(msgid: str) -> str:
    """``msgid`` in the command line's language (``current_language``)."""
    return translations(current_language()).gettext(msgid)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language()).ngettext(singular, plural, n)


def pgettext(context: str, msgid: str) -> str:
    """``msgid`` in the command line's language, where the same English word means different things."""
    return translations(current_language()).pgettext(context, msgid)


def render(text: Any) -> str:
    """A Message, a VaultError or plain text, in the command line's language."""
    if hasattr(text, "render"):
        return text.render(_)
    return _(text) if isinstance(text, str) and text else str(text)


def help_key(text: str) -> str:
    """The catalogue id of a help text: as click shows it (dedented, cut at a form feed)."""
    import inspect

    return inspect.cleandoc(text).partition("\f")[0].strip()


def extract_python(fileobj: IO[bytes], keywords: Any, comment_tags: Any,
                   options: Any) -> Iterator[tuple[Any, ...]]:
    """Babel's Python extractor, plus the help texts of click commands: the docstrings of functions
    decorated with ``.command``/``.group`` and every constant ``help=`` argument."""
    import ast
    from babel.messages.extract import extract_python as standard

    data = fileobj.read()
    yield from standard(io.BytesIO(data), keywords, comment_tags, options)
    for node in ast.walk(ast.parse(data)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(map(_is_click_decorator, node.decorator_list)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield node.lineno, "", help_key(doc), []
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "help" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    yield kw.value.lineno, "", help_key(kw.value.value), []


def _is_click_decorator(node: Any) -> bool:
    import ast

    f = node.func if isinstance(node, ast.Call) else node
    return isinstance(f, ast.Attribute) and f.attr in ("command", "group")


def format_datetime(when: dt.datetime, lang: str, zone: dt.tzinfo = dt.timezone.utc) -> str:
    """A moment in the reader's locale, in ``zone`` and naming it (the portal passes the office's: the
    reader's own zone is unknown, and the office's is the one its letters and calls use)."""
    from babel.dates import format_datetime as fmt

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
