"""TOML as ``tomli_w.dumps`` writes it, byte for byte, for the records the vault writes — faster.

``tomli_w`` escapes a string by walking it a character at a time and renders every table of an
array of tables inline only to measure it; writing manifests was ~15% of a bulk add's CPU. This
writer makes the same choices (same order, same inline/array-of-tables heuristic, same escapes)
with a regular expression per string; ``tests/test_tomlwrite.py`` holds it to ``tomli_w`` on
generated and real records. Values: str, bool, int, float, dates and times, lists, mappings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, Iterator

_MAX_LINE = 100  # tomli_w's MAX_LINE_LENGTH: an array of tables longer inline is written as [[...]]
_INDENT = "    "
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_ILLEGAL = re.compile(r'[\x00-\x08\x0a-\x1f\x7f"\\]')
_ESCAPES = {"\b": "\\b", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def _escape(m: re.Match) -> str:
    c = m.group()
    return _ESCAPES.get(c) or "\\u" + format(ord(c), "04x")


def _string(s: str) -> str:
    return '"' + (_ILLEGAL.sub(_escape, s) if _ILLEGAL.search(s) else s) + '"'


def _key(k: str) -> str:
    if not isinstance(k, str):
        raise TypeError(f"Invalid mapping key '{k}' of type '{type(k).__qualname__}'. A string is required.")
    return k if _BARE_KEY.match(k) else _string(k)


def _inline_table(t: Mapping) -> str:
    if not t:
        return "{}"
    return "{ " + ", ".join(f"{_key(k)} = {_literal(v, 0)}" for k, v in t.items()) + " }"


def _literal(v: Any, nest: int) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (int, float, date, datetime)):
        return str(v)
    if isinstance(v, time):
        if v.tzinfo:
            raise ValueError("TOML does not support offset times")
        return str(v)
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]"
        inner = _INDENT * (1 + nest)
        return "[\n" + ",\n".join(inner + _literal(x, nest + 1) for x in v) + f",\n{_INDENT * nest}]"
    if isinstance(v, Mapping):
        return _inline_table(v)
    raise TypeError(f"Object of type '{type(v).__qualname__}' is not TOML serializable")


def _fits_inline(t: Mapping) -> bool:
    rendered = f"{_INDENT}{_inline_table(t)},"
    return len(rendered) <= _MAX_LINE and "\n" not in rendered


def _chunks(table: Mapping, name: str, in_aot: bool) -> Iterator[str]:
    yielded = False
    literals: list[tuple[str, Any]] = []
    tables: list[tuple[str, Any, bool]] = []
    for k, v in table.items():
        if isinstance(v, Mapping):
            tables.append((k, v, False))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v) \
                and not all(_fits_inline(x) for x in v):
            tables.extend((k, x, True) for x in v)
        else:
            literals.append((k, v))
    if in_aot or name and (literals or not tables):
        yielded = True
        yield f"[[{name}]]\n" if in_aot else f"[{name}]\n"
    if literals:
        yielded = True
        for k, v in literals:
            yield f"{_key(k)} = {_literal(v, 0)}\n"
    for k, v, aot in tables:
        if yielded:
            yield "\n"
        else:
            yielded = True
        part = _key(k)
        yield from _chunks(v, f"{name}.{part}" if name else part, aot)


def dumps(obj: Mapping[str, Any]) -> str:
    """``obj`` as TOML text, exactly as ``tomli_w.dumps(obj)`` writes it."""
    return "".join(_chunks(obj, "", False))
