"""The file target writes large objects past the page cache (``vault.store.directio``): every byte lands, whatever the stream."""

from __future__ import annotations

import io
import random

import pytest

from vault.store.directio import STAGE
from vault_plugins.targets import FileTarget

SIZES = [0, 1, 4095, 4096, STAGE - 1, STAGE, STAGE + 1, STAGE + 4096, 3 * STAGE + 123]


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


def test_put_many_makes_what_it_named_durable_before_an_error_leaves(tmp_path):
    """An error while naming the batch (here the second object's name is a directory) leaves the
    objects named before it in place and their directory synced — the next run lists them and puts
    them no more — and no temporary file behind."""
    from vault.store import seam

    target = FileTarget(f"file://{tmp_path / 't'}")
    blocker = tmp_path / "t" / "keys" / "b.age" / "1"
    blocker.mkdir(parents=True)
    (blocker / "x").write_bytes(b"")
    trace: list[tuple[str, str]] = []
    seam.arm(0, trace=trace)
    try:
        with pytest.raises(OSError):
            target.put_many([("keys/a.age/1", b"first"), ("keys/b.age/1", b"second")])
    finally:
        seam.disarm()
    named = tmp_path / "t" / "keys" / "a.age"
    assert (named / "1").read_bytes() == b"first"
    renamed = trace.index(("rename", str(named / "1")))
    assert ("fsync", str(named)) in trace[renamed:], trace
    assert not [p for p in (tmp_path / "t").rglob(".tmp-*")]
