"""Typed records: a frozen dataclass per record kind, read from its file's table and written back to the same bytes.

A record kind (``schemas/<kind>.schema.json``) becomes a subclass of ``TypedRecord`` that is a
``@dataclass(frozen=True, slots=True)`` whose fields are the record's keys (``class`` is
``class_``, with ``field(metadata=key("class"))``), its last field ``keys_ = order()``. ``from_record`` validates the table against the kind's schema first, so a record
that reaches the code is one of the shapes FORMAT promises; ``to_record`` gives the table back with
its keys in the order the file had them, so a record read and written again (a manifest) keeps
its bytes and its signature covers what it covered.

An optional key the file does not have is ``None`` (TOML has no null, so ``None`` is never a
value); lists become tuples and sub-tables of a known shape become their own typed parts
(``TypedPart``), which the parent's schema validates with it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Mapping
from typing import Any, Callable, ClassVar, TypeVar

from vault.store import records

P = TypeVar("P", bound="TypedPart")
#: A typed record kind, for functions that read any kind (``vault.archive.committed.load_record``).
R = TypeVar("R", bound="TypedRecord")


def key(name: str) -> dict[str, Any]:
    """Field metadata: the record key of a field whose key is not a Python name (``class``)."""
    return {"key": name}


def part(cls: type[TypedPart]) -> dict[str, Any]:
    """Field metadata: the field holds a sub-table of shape ``cls``, or (a list field) a list of them."""
    return {"part": cls}


def state(cls: type[enum.Enum]) -> dict[str, Any]:
    """Field metadata: the value is one of enumeration ``cls`` (the record holds the member's value)."""
    return {"enum": cls}


def order() -> Any:
    """The field that remembers the order of the record's keys (last, out of comparisons)."""
    return dataclasses.field(default=(), repr=False, compare=False)


def _keys_of(cls: type) -> list[tuple[str, dataclasses.Field]]:
    return [(f.metadata.get("key", f.name), f) for f in dataclasses.fields(cls) if f.name != "keys_"]


_PLANS: dict[type, dict[str, tuple[str, Callable[[Any], Any]]]] = {}


def _plan(cls: type) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """Record key → (field name, what turns the table's value into the field's), once per kind:
    a check reads every manifest, and each document is a part."""
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    out = {}
    for k, f in _keys_of(cls):
        if "enum" in f.metadata:
            conv: Callable[[Any], Any] = f.metadata["enum"]
        elif "part" in f.metadata:
            conv = functools.partial(_parts, f.metadata["part"].parse)
        else:
            conv = _frozen
        out[k] = (f.name, conv)
    _PLANS[cls] = out
    return out


def _parts(parse: Callable[[Any], Any], value: Any) -> Any:
    return tuple(map(parse, value)) if isinstance(value, list) else parse(value)


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(x) for x in value)
    return value


def _to_plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, TypedPart):
        return value.to_record()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_to_plain(x) for x in value]
    if isinstance(value, Mapping):
        return {k: _to_plain(x) for k, x in value.items()}
    return value


_SCALARS = frozenset((str, int, bool, float))


class TypedPart:
    """A sub-table of a record (a manifest's document, a signature): typed, validated with its record."""

    __slots__ = ()
    #: the record's keys in the order its table had them (each subclass's last field, ``order()``)
    keys_: tuple[str, ...]

    @classmethod
    def parse(cls: type[P], data: Mapping[str, Any]) -> P:
        """The part from a table its record's schema has already validated."""
        plan = _plan(cls)
        kw = {}
        for k, value in data.items():
            step = plan.get(k)
            if step is None:  # (the schema refuses keys it does not name, and a test holds the type to it)
                raise TypeError(f"{cls.__name__}: {k}: the record kind's schema has a key its type lacks")
            kw[step[0]] = step[1](value)
        return cls(**kw, keys_=tuple(data))  # type: ignore[call-arg]  # (each subclass is a dataclass)

    def to_record(self) -> dict[str, Any]:
        """The table, keys in the order they were read (then any set since, in field order)."""
        plan = _plan(type(self))
        seen = self.keys_
        out: dict[str, Any] = {}
        for k in (*seen, *(k for k in plan if k not in seen)) if len(seen) != len(plan) else seen:
            step = plan.get(k)
            value = None if step is None else getattr(self, step[0])
            if value is not None:
                out[k] = _to_plain(value)
        return out


class TypedRecord(TypedPart):
    """A signed (or signable) record of one kind: ``KIND`` names its schema in ``schemas/``."""

    __slots__ = ()
    KIND: ClassVar[str]

    @classmethod
    def from_record(cls: type[R], data: Any, *, what: str | None = None) -> R:
        """The record of this kind that ``data`` (a parsed TOML table) is; FormatError names the kind
        (or ``what``, its path) and the field otherwise."""
        records.validate(data, cls.KIND, what=what or cls.KIND)
        return cls.parse(data)


@dataclasses.dataclass(frozen=True, slots=True)
class Signature(TypedPart):
    """The ``signature`` table of a signed record: the member who signed it and the Ed25519 signature."""

    by: str
    ed25519: str
    keys_: tuple[str, ...] = order()
