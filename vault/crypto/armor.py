"""Strict streaming ASCII armor for age files (RFC 7468 "AGE ENCRYPTED FILE" PEM).

Armor is malleable unless it is parsed strictly, so everything but whitespace before
and after the block is rejected: headers, short inner lines, long lines, whitespace
inside, missing or non-canonical padding. LF and CRLF are accepted, but one file
uses one of them throughout.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from vault.crypto.stream import Sink as _Sink

from vault.errors import FormatError
from vault.i18n import Message, N_

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
_COLUMNS = 64
_BYTES_PER_LINE = 48
_WHITESPACE = b" \t\r\n"
_LINE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_FULL = re.compile(rb"[A-Za-z0-9+/]*")
_READ_SIZE = 64 * 1024
_FAST_LINES = 1024  # lines decoded per fast-path step: ~48 KiB of output


def _fail(why: str) -> FormatError:
    return FormatError(N_("age armor: {why}"), why=why)


class DearmorReader(io.RawIOBase):
    """Decodes an armored age file from ``src`` with a bounded buffer (flat memory)."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._buf = bytearray()
        self._eof = False
        self._eol: bytes | None = None
        self._pending = memoryview(b"")
        self._done = False
        self._last_seen = False  # a short (or padded) line was read: only END may follow

    def readable(self) -> bool:
        return True

    def _fill(self, size: int) -> None:
        while len(self._buf) < size and not self._eof:
            block = self._src.read(max(size - len(self._buf), _READ_SIZE))
            if not block:
                self._eof = True
            self._buf += block

    def _take(self, size: int) -> bytes:
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def _readline(self, limit: int) -> bytes:
        """Up to ``limit`` bytes, ending at the first LF if there is one within them."""
        self._fill(limit)
        end = self._buf.find(b"\n", 0, limit)
        return self._take(limit if end < 0 else end + 1)

    def _begin(self) -> None:
        while True:
            self._fill(1)
            if not self._buf or self._buf[0] not in _WHITESPACE:
                break
            del self._buf[:1]
        line = self._readline(len(BEGIN) + 2)
        if line == BEGIN + b"\r\n":
            self._eol = b"\r\n"
        elif line == BEGIN + b"\n":
            self._eol = b"\n"
        else:
            raise _fail(Message(N_("missing or malformed BEGIN line")))

    @property
    def _line_end(self) -> bytes:
        """The line ending the BEGIN line chose (read before any other line)."""
        if self._eol is None:
            raise _fail(Message(N_("missing or malformed BEGIN line")))
        return self._eol

    def _finish(self, line: bytes) -> None:
        # After the END line only whitespace may follow: anything else would be
        # unauthenticated data smuggled alongside the file.
        if line not in (END + self._line_end, END):
            raise _fail(Message(N_("malformed END line")))
        while True:
            if bytes(self._buf).strip(_WHITESPACE):
                raise _fail(Message(N_("data after the END line")))
            self._buf.clear()
            if self._eof:
                break
            self._fill(_READ_SIZE)
        self._done = True

    def _full_lines(self) -> bytes | None:
        """Fast path: decode a run of full 64-column lines at once, or None if the
        buffer does not start with one (then the strict line-by-line path decides)."""
        width = _COLUMNS + len(self._line_end)
        self._fill(_FAST_LINES * width)
        count = len(self._buf) // width
        if count < 2 or self._last_seen:
            return None
        lines = bytes(self._buf[: count * width]).split(self._line_end)
        if lines[-1] or any(len(line) != _COLUMNS for line in lines[:-1]):
            return None
        text = b"".join(lines)
        if not _FULL.fullmatch(text):
            return None  # "=" or a stray character: let the strict path report it
        del self._buf[: count * width]
        return base64.b64decode(text)

    def _next_line(self) -> bytes:
        if self._eol is None:
            self._begin()
        fast = self._full_lines()
        if fast is not None:
            return fast
        line = self._readline(_COLUMNS + len(self._line_end) + 1)
        if line.startswith(b"-----"):
            self._finish(line)
            return b""
        if self._last_seen:
            raise _fail(Message(N_("line after the final short line")))
        if not line.endswith(self._line_end):
            raise _fail(Message(N_("line too long, truncated or with the wrong line ending")))
        text = line[: -len(self._line_end)]
        if not text or len(text) % 4 or not _LINE.fullmatch(text):
            raise _fail(Message(N_("malformed base64 line")))
        if len(text) < _COLUMNS or text.endswith(b"="):
            self._last_seen = True
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error as err:
            raise _fail(Message(N_("invalid base64"))) from err
        if base64.b64encode(data) != text:
            raise _fail(Message(N_("non-canonical base64")))
        return data

    def readinto(self, buffer: Buffer) -> int:
        while not self._pending and not self._done:
            self._pending = memoryview(self._next_line())
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def dearmor(src: BinaryIO) -> io.BufferedReader:
    """A buffered binary reader of the age file armored in ``src``."""
    return io.BufferedReader(DearmorReader(src))


class ArmorWriter:
    """Armors what is written to it into ``dst``; ``close()`` writes the END line, not closing dst."""

    def __init__(self, dst: _Sink) -> None:
        self._dst = dst
        self._buffer = bytearray()
        self._dst.write(BEGIN + b"\n")

    def write(self, data: bytes | memoryview) -> int:
        self._buffer += data
        full = len(self._buffer) - len(self._buffer) % _BYTES_PER_LINE
        if full:
            encoded = base64.b64encode(bytes(self._buffer[:full]))
            self._dst.write(
                b"".join(encoded[i : i + _COLUMNS] + b"\n" for i in range(0, len(encoded), _COLUMNS))
            )
            del self._buffer[:full]
        return len(data)

    def close(self) -> None:
        if self._buffer:
            self._dst.write(base64.b64encode(bytes(self._buffer)) + b"\n")
            self._buffer.clear()
        self._dst.write(END + b"\n")
