"""The backup-target conformance suite of ``vault.testing``: round trip, list, delete, and surviving an interrupted put.

PYTEST_DONT_REWRITE: the suite's own messages say what is wrong; pytest's comparison of large
objects would only add noise (and time).
"""

from __future__ import annotations

import io
import random
from typing import Any

import pytest

from vault.errors import NotFoundError, PluginError
from vault.i18n import N_
from vault.testing.base import Conformance

#: Object names every target must store: nested, with the characters a vault's names use.
NAMES = ("snapshots/2026-03-01T12-00-00Z/manifest", "keys/0123456789abcdef.age",
         "dossiers/ab/cd/documents/ef01.age", "vault.toml", "index/sequence", "x-y_z.1")
#: Sizes every round trip is tried with: empty, one byte, across 64 KiB and 1 MiB boundaries.
SIZES = (0, 1, 65_537, 3 * 1024 * 1024 + 7)


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Interrupted(Exception):
    """Raised by :class:`BreakingReader` where the kit cuts a put short."""


class BreakingReader(io.RawIOBase):
    """A readable stream that gives ``good`` bytes of ``data`` and then raises, like a connection cut mid-upload."""

    def __init__(self, data: bytes, good: int) -> None:
        self._data, self._good, self._pos = data, good, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._good:
            raise Interrupted(f"interrupted after {self._good} bytes")
        n = min(len(buffer), self._good - self._pos)
        buffer[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


def _read(target: Any, name: str) -> bytes:
    stream = target.get(name)
    try:
        return stream.read()
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


def _same(got: bytes, want: bytes) -> bool:
    """Byte equality as a call: pytest's assertion rewriting would otherwise diff megabytes of objects
    byte by byte (quadratic) to explain a failure, where the message already says what is wrong."""
    return got == want


class BackupTargetConformance(Conformance):
    """The contract of a backup target [R-3.3.1]: objects round-trip byte for byte, ``list`` and ``exists`` tell
    the truth, ``delete`` deletes, missing names raise ``NotFoundError``, and an interrupted ``put`` leaves
    the old object (or none) — never a partial one.

    Subclass it, set ``plugin`` (and ``names``, the URL schemes, to test only some), and define the
    ``target_url`` fixture: the URL of an empty location private to one test, such as
    ``tmp_path.as_uri()`` for ``file``."""

    family = "backup_targets"

    @pytest.fixture
    def target_url(self) -> str:
        """Override: the URL of an empty location private to one test."""
        raise PluginError(N_("{name__} must define a target_url fixture returning the URL of an empty location, e.g. tmp_path.as_uri() for file"), name__=type(self).__name__)

    @pytest.fixture
    def vault_target(self, vault_case: tuple, target_url: str) -> Any:
        """The target under test, built from ``target_url`` by its factory as the vault would."""
        return vault_case[1].factory(target_url)

    def test_round_trip(self, vault_case: tuple, vault_target: Any) -> None:
        """What is put is what is got, byte for byte, for every size and name; ``exists`` says so."""
        name = vault_case[0]
        for i, (obj, size) in enumerate(zip(NAMES, SIZES * 2)):
            data = _data(size, i)
            vault_target.put(obj, io.BytesIO(data))
            assert vault_target.exists(obj), f"{name}: exists({obj!r}) is false after put"
            got = _read(vault_target, obj)
            assert _same(got, data), f"{name}: get({obj!r}) gave {len(got)} bytes, not the {size} put"

    def test_put_replaces(self, vault_case: tuple, vault_target: Any) -> None:
        """A second put of a name replaces the object."""
        name = vault_case[0]
        vault_target.put("snapshots/latest", io.BytesIO(b"first, and longer than the second"))
        vault_target.put("snapshots/latest", io.BytesIO(b"second"))
        assert _same(_read(vault_target, "snapshots/latest"), b"second"), f"{name}: put did not replace the object"

    def test_create_only(self, vault_case: tuple, vault_target: Any) -> None:
        """``put(..., create_only=True)`` creates a new object and leaves an existing one as it is."""
        name = vault_case[0]
        vault_target.put("data/ab/abcdef", io.BytesIO(b"first"), create_only=True)
        vault_target.put("data/ab/abcdef", io.BytesIO(b"second"), create_only=True)
        got = _read(vault_target, "data/ab/abcdef")
        assert got == b"first", f"{name}: put(create_only=True) replaced an existing object ({got[:20]!r})"

    def test_put_many(self, vault_case: tuple, vault_target: Any) -> None:
        """``put_many(items, *, create_only=False)``, where a target offers it (it is optional): each
        object as ``put`` leaves it, ``create_only`` included, and nothing else listed."""
        name = vault_case[0]
        many = getattr(vault_target, "put_many", None)
        if many is None:
            pytest.skip(f"{name}: offers no put_many (optional: the engine then puts each object)")
        vault_target.put("keys/a.age", io.BytesIO(b"first"))
        items = [(obj, _data(size, i)) for i, (obj, size) in enumerate(zip(NAMES, (0, 1, 65_537, 10, 4096, 3)))]
        many([*items, ("keys/a.age", b"second")], create_only=True)
        for obj, data in items:
            got = _read(vault_target, obj)
            assert _same(got, data), f"{name}: put_many gave {obj!r} {len(got)} bytes, not the {len(data)} put"
        got = _read(vault_target, "keys/a.age")
        assert got == b"first", f"{name}: put_many(create_only=True) replaced an existing object ({got[:20]!r})"
        many([("keys/a.age", b"second")])
        assert _read(vault_target, "keys/a.age") == b"second", f"{name}: put_many did not replace the object"
        listed = sorted(vault_target.list())
        assert listed == sorted([*NAMES, "keys/a.age"]), f"{name}: after put_many, list() gives {listed}"
        # A batch cut short (a name the target refuses, after others) leaves each object whole or
        # absent: whatever is listed was put, and nothing else.
        try:
            many([("keys/b.age", b"b"), ("keys/c.age", b"c"), ("../outside", b"x")])
        except Exception:
            pass
        else:
            pytest.fail(f"{name}: put_many accepted the object name '../outside'", pytrace=False)
        after = set(vault_target.list())
        assert {*NAMES, "keys/a.age"} <= after <= {*NAMES, "keys/a.age", "keys/b.age", "keys/c.age"}, \
            f"{name}: after a failed put_many, list() gives {sorted(after)}"
        for obj, data in (("keys/b.age", b"b"), ("keys/c.age", b"c")):
            if obj in after:
                assert _read(vault_target, obj) == data, f"{name}: a failed put_many left {obj} partial"

    def test_list(self, vault_case: tuple, vault_target: Any) -> None:
        """``list`` yields every name once, and only names under ``prefix``."""
        name = vault_case[0]
        assert list(vault_target.list()) == [], f"{name}: a new target is not empty"
        for i, obj in enumerate(NAMES):
            vault_target.put(obj, io.BytesIO(_data(10, i)))
        listed = list(vault_target.list())
        assert sorted(listed) == sorted(NAMES), f"{name}: list() gave {sorted(listed)}, not {sorted(NAMES)}"
        assert len(listed) == len(set(listed)), f"{name}: list() yields a name twice"
        under = sorted(vault_target.list("dossiers/"))
        assert under == ["dossiers/ab/cd/documents/ef01.age"], f"{name}: list('dossiers/') gave {under}"
        assert list(vault_target.list("nothing/")) == [], f"{name}: list('nothing/') is not empty"

    def test_delete(self, vault_case: tuple, vault_target: Any) -> None:
        """``delete`` removes an object; ``get`` and ``delete`` of a missing name raise NotFoundError."""
        name = vault_case[0]
        vault_target.put("keys/a.age", io.BytesIO(b"key table"))
        vault_target.put("keys/b.age", io.BytesIO(b"another"))
        vault_target.delete("keys/a.age")
        assert not vault_target.exists("keys/a.age"), f"{name}: exists() is true after delete"
        assert list(vault_target.list()) == ["keys/b.age"], f"{name}: list() after delete: {list(vault_target.list())}"
        for what, call in (("get", vault_target.get), ("delete", vault_target.delete)):
            try:
                call("keys/a.age")
            except NotFoundError:
                continue
            except Exception as exc:
                pytest.fail(f"{name}: {what} of a missing name raised {type(exc).__name__}, not NotFoundError",
                            pytrace=False)
            pytest.fail(f"{name}: {what} of a missing name did not raise NotFoundError", pytrace=False)

    def test_survives_interrupted_put(self, vault_case: tuple, vault_target: Any, target_url: str) -> None:
        """A put cut short leaves the previous object whole, creates no new one, and leaves no stray names."""
        name, registration, _ = vault_case
        old = _data(100_000, 1)
        vault_target.put("snapshots/1", io.BytesIO(old))
        for obj, create_only in (("snapshots/1", False), ("snapshots/2", False), ("data/00/0000", True)):
            with pytest.raises(Interrupted):
                vault_target.put(obj, io.BufferedReader(BreakingReader(_data(2_000_000, 2), 1_500_000)),
                                 create_only=create_only)
        fresh = registration.factory(target_url)  # as a later run would see it
        for target in (vault_target, fresh):
            assert _same(_read(target, "snapshots/1"), old), f"{name}: an interrupted put damaged the object it replaced"
            for obj in ("snapshots/2", "data/00/0000"):
                assert not target.exists(obj), f"{name}: an interrupted put left a partial new object {obj}"
            listed = sorted(target.list())
            assert listed == ["snapshots/1"], f"{name}: after an interrupted put, list() gives {listed}"

    def test_objects_persist(self, vault_case: tuple, vault_target: Any, target_url: str) -> None:
        """A new target object for the same URL sees what an earlier one stored."""
        name, registration, _ = vault_case
        vault_target.put("vault.toml", io.BytesIO(b"format = 1\n"))
        again = registration.factory(target_url)
        assert _same(_read(again, "vault.toml"), b"format = 1\n"), f"{name}: a new target for the URL lost the object"

    def test_through_the_vault(self, vault_case: tuple, target_url: str) -> None:
        """The registration builds a target that works through the vault's guarded path."""
        target = vault_case[1](target_url)
        target.put("index/sequence", io.BytesIO(b"42"))
        assert target.exists("index/sequence") and sorted(target.list()) == ["index/sequence"]
