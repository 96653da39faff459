"""Large objects written past the page cache (``vault.store.direct``): every byte lands, whatever the stream."""

from __future__ import annotations

import fcntl
import io
import os
import random

import pytest

from vault.store import direct
from vault_plugins.targets import FileTarget

SIZES = [0, 1, 4095, 4096, direct.DIRECT_MIN - 1, direct.DIRECT_MIN, direct.DIRECT_MIN + 1,
         direct.CHUNK, direct.CHUNK + direct.ALIGN, 3 * direct.CHUNK + 123]


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per call, as a pack's parts or a socket do."""

    def __init__(self, data: bytes, step: int, on_read=None) -> None:
        self.data, self.pos, self.step, self.on_read = data, 0, step, on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.on_read is not None:
            self.on_read()
        n = min(len(b), self.step, len(self.data) - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


class ReadOnly:
    """A stream with ``read`` alone (a plugin's body object need not have ``readinto``)."""

    def __init__(self, data: bytes) -> None:
        self.f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.f.read(min(n, 70_001) if n > 0 else n)


@pytest.mark.parametrize("size", SIZES)
def test_a_put_keeps_every_byte_at_every_size_and_stream_shape(tmp_path, size):
    data = random.Random(size).randbytes(size)
    target = FileTarget(f"file://{tmp_path / 't'}")
    target.put("data/ab/trickle", Trickle(data, 100_003), create_only=True)
    target.put("data/ab/readonly", ReadOnly(data), create_only=True)
    target.put("data/ab/bytesio", io.BytesIO(data), create_only=True)
    for name in ("trickle", "readonly", "bytesio"):
        assert (tmp_path / "t" / "data" / "ab" / name).read_bytes() == data, name
    assert not [p for p in (tmp_path / "t" / "data" / "ab").iterdir() if p.name.startswith(".tmp-")]


def _direct_io_here(path) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return False
    os.close(fd)
    return hasattr(os, "O_DIRECT")


def test_the_bulk_of_a_large_object_is_written_with_direct_io_and_the_tail_through_the_cache(tmp_path):
    if not _direct_io_here(tmp_path / "probe"):
        pytest.skip("this file system (or platform) has no direct I/O: the plain path is the one tested above")
    size = 2 * direct.CHUNK + 1000
    data = random.Random(7).randbytes(size)
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    seen = []
    try:
        # The stream is asked for more after each chunk is written: the flag as each write left it.
        assert direct.copy_into(fd, Trickle(data, direct.CHUNK, lambda: seen.append(
            bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)))) == size
        flags_after = fcntl.fcntl(fd, fcntl.F_GETFL)
    finally:
        os.close(fd)
    assert seen[0] is False and True in seen  # off until a large first chunk, then on for the bulk
    assert not flags_after & os.O_DIRECT  # off for the partial last block
    assert (tmp_path / "out").read_bytes() == data


def test_without_direct_io_the_same_bytes_go_through_the_page_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(direct, "_O_DIRECT", 0)  # a platform without the flag
    data = random.Random(3).randbytes(direct.CHUNK + 5)
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        assert direct.copy_into(fd, io.BytesIO(data)) == len(data)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == data
