"""Byte counting around a stream, for progress bars: every byte read goes to ``step``."""

from __future__ import annotations

from typing import Any, BinaryIO, Callable, cast

#: How long operations report progress: called once with the total bytes, it returns the step
#: function to call with each number of bytes done (a front end draws a bar; the library only counts).
Progress = Callable[[int], Callable[[int], None]]


class CountingReader:
    """A binary reader that reports the bytes read from ``raw`` to ``step``."""

    def __init__(self, raw: BinaryIO, step: Callable[[int], None]) -> None:
        self._raw, self._step = raw, step

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._step(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:
            n = readinto(buffer) or 0
        else:
            data = self._raw.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        if n:
            self._step(n)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def counting(raw: BinaryIO, step: Callable[[int], None]) -> BinaryIO:
    """``raw`` as a binary reader that reports its bytes to ``step`` (used where a BinaryIO is expected)."""
    return cast(BinaryIO, CountingReader(raw, step))


def no_progress(total: int) -> Callable[[int], None]:
    return lambda n: None
