"""A fast yes/no JSON Schema check for the keyword subset the vault's schemas use; jsonschema explains a no.

Every command validates the records it reads, and importing jsonschema (with its referencing and
attrs stack) cost more than the rest of a small command's start-up. A schema is compiled once into
nested closures; ``compile`` returns None for a schema with any keyword outside the subset below, and
the caller then uses jsonschema for it. The contract is one-sided: a "yes" here must be a "yes" from
jsonschema's Draft 2020-12 validator (tests compare the two on mutated records); a "no" is handed to
jsonschema, which is the authority and words the error.
"""

from __future__ import annotations

import numbers
import re
from typing import Any, Callable

Check = Callable[[Any], bool]

# Keywords that never affect validity (Draft 2020-12 without a format checker: format is annotation).
_ANNOTATIONS = {"$schema", "$comment", "title", "description", "default", "examples", "deprecated",
                "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "format"}


class Unsupported(Exception):
    """The schema uses a keyword this module does not implement."""


def equal(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema has it: true is not 1, 1 is 1.0, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(equal, a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(equal(a[k], b[k]) for k in a))
    return a == b


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer()),
}


def compile(schema: Any) -> Check | None:  # noqa: A001 - the module's verb
    """A function telling whether an instance is valid, or None if the schema is outside the subset."""
    try:
        return _compile(schema)
    except Unsupported:
        return None


def _compile(s: Any) -> Check:
    if s is True:
        return lambda x: True
    if s is False:
        return lambda x: False
    if not isinstance(s, dict):
        raise Unsupported("schema is not an object")
    checks: list[Check] = []
    for key, val in s.items():
        if key in _ANNOTATIONS or key in ("then", "else", "properties", "additionalProperties"):
            continue  # then/else come with if; properties with additionalProperties, below
        make = _KEYWORDS.get(key)
        if make is None:
            raise Unsupported(key)
        checks.append(make(val, s))
    if "properties" in s or "additionalProperties" in s:
        checks.append(_properties(s))
    return _all(checks)


def _all(checks: list[Check]) -> Check:
    # Unrolled for the common short lists: ``vault check`` validates every manifest of the vault, and
    # a generator per schema node was most of that time.
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) and b(x)
    if len(checks) == 3:
        a, b, c = checks
        return lambda x: a(x) and b(x) and c(x)

    def check(x: Any) -> bool:
        for c in checks:
            if not c(x):
                return False
        return True

    return check


def _type(val: Any, s: dict) -> Check:
    names = val if isinstance(val, list) else [val]
    fs = [_TYPES[n] for n in names]
    if len(fs) == 1:
        return fs[0]
    return lambda x: any(f(x) for f in fs)


def _properties(s: dict) -> Check:
    props = {k: _compile(v) for k, v in s.get("properties", {}).items()}
    extra = s.get("additionalProperties", True)
    extra_check = None if extra is True else _compile(extra)

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        for k, v in x.items():
            c = props.get(k, extra_check)
            if c is not None and not c(v):
                return False
        return True

    return check


def _only(kind: type, test: Callable[[Any], bool]) -> Check:
    """A keyword that constrains only instances of ``kind`` (the others pass it)."""
    return lambda x: not isinstance(x, kind) or test(x)


def _only_numbers(test: Callable[[Any], bool]) -> Check:
    return lambda x: not _is_number(x) or test(x)


def _unique(x: list) -> bool:
    return all(not equal(x[i], x[j]) for i in range(len(x)) for j in range(i + 1, len(x)))


def _if(val: Any, s: dict) -> Check:
    cond = _compile(val)
    then = _compile(s.get("then", True))
    other = _compile(s.get("else", True))
    return lambda x: then(x) if cond(x) else other(x)


def python_pattern(pattern: str) -> str:
    """A schema's pattern as Python's ``re`` reads it with ECMA-262's meaning of ``$``: the end of the
    text (Python's ``$`` also matches before a final newline, so ``^G-[0-9]{6}$`` took
    ``G-000001\\n``). Each ``$`` that is neither escaped nor in a character class becomes ``\\Z``."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            head = "[^]" if pattern.startswith("^]", i + 1) else "[]" if pattern.startswith("]", i + 1) else ""
            if head:  # a "]" first in a class (after a "^") is a member, not its end
                out.append(head)
                i += len(head)
                continue
        elif c == "$":
            c = "\\Z"
        out.append(c)
        i += 1
    return "".join(out)


def _pattern(val: str, s: dict) -> Check:
    rx: re.Pattern | None = None

    def check(x: Any) -> bool:
        nonlocal rx
        if not isinstance(x, str):
            return True
        if rx is None:
            rx = re.compile(python_pattern(val))  # on first use: a command meets few of the policy's patterns
        return rx.search(x) is not None

    return check


def _property_names(val: Any, s: dict) -> Check:
    c = _compile(val)
    return _only(dict, lambda x: all(c(k) for k in x))


def _items(val: Any, s: dict) -> Check:
    if "prefixItems" in s:
        raise Unsupported("prefixItems")
    c = _compile(val)

    def check(x: Any) -> bool:
        if isinstance(x, list):
            for i in x:
                if not c(i):
                    return False
        return True

    return check


def _dependent_required(val: dict, s: dict) -> Check:
    return _only(dict, lambda x: all(all(d in x for d in deps) for k, deps in val.items() if k in x))


def _all_of(val: list, s: dict) -> Check:
    return _all([_compile(v) for v in val])


def _any_of(val: list, s: dict) -> Check:
    cs = [_compile(v) for v in val]
    return lambda x: any(c(x) for c in cs)


def _not(val: Any, s: dict) -> Check:
    c = _compile(val)
    return lambda x: not c(x)


_KEYWORDS: dict[str, Callable[[Any, dict], Check]] = {
    "type": _type,
    "enum": lambda val, s: lambda x: any(equal(x, e) for e in val),
    "const": lambda val, s: lambda x: equal(x, val),
    "pattern": _pattern,
    "minLength": lambda val, s: _only(str, lambda x: len(x) >= val),
    "maxLength": lambda val, s: _only(str, lambda x: len(x) <= val),
    "minimum": lambda val, s: _only_numbers(lambda x: x >= val),
    "maximum": lambda val, s: _only_numbers(lambda x: x <= val),
    "required": lambda val, s: _only(dict, lambda x: all(k in x for k in val)),
    "minProperties": lambda val, s: _only(dict, lambda x: len(x) >= val),
    "dependentRequired": _dependent_required,
    "propertyNames": _property_names,
    "items": _items,
    "minItems": lambda val, s: _only(list, lambda x: len(x) >= val),
    "uniqueItems": lambda val, s: _only(list, _unique) if val else (lambda x: True),
    "allOf": _all_of,
    "anyOf": _any_of,
    "not": _not,
    "if": _if,
}
