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
from typing import BinaryIO

from vault.errors import FormatError

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
_COLUMNS = 64
_BYTES_PER_LINE = 48
_WHITESPACE = b" \t\r\n"
_LINE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _fail(why: str) -> FormatError:
    return FormatError(f"age armor: {why}")


class DearmorReader(io.RawIOBase):
    """Decodes an armored age file from a buffered ``src`` one line at a time (flat memory)."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._eol: bytes | None = None
        self._pending = b""
        self._done = False
        self._last_seen = False  # a short (or padded) line was read: only END may follow

    def readable(self) -> bool:
        return True

    def _begin(self) -> None:
        first = self._src.read(1)
        while first and first in _WHITESPACE:
            first = self._src.read(1)
        line = first + self._src.readline(len(BEGIN) + 1)
        if line == BEGIN + b"\r\n":
            self._eol = b"\r\n"
        elif line == BEGIN + b"\n":
            self._eol = b"\n"
        else:
            raise _fail("missing or malformed BEGIN line")

    def _finish(self, line: bytes) -> None:
        # After the END line only whitespace may follow: anything else would be
        # unauthenticated data smuggled alongside the file.
        if line not in (END + self._eol, END):
            raise _fail("malformed END line")
        while block := self._src.read(64 * 1024):
            if block.strip(_WHITESPACE):
                raise _fail("data after the END line")
        self._done = True

    def _next_line(self) -> bytes:
        if self._eol is None:
            self._begin()
        line = self._src.readline(_COLUMNS + len(self._eol) + 1)
        if line.startswith(b"-----"):
            self._finish(line)
            return b""
        if self._last_seen:
            raise _fail("line after the final short line")
        if not line.endswith(self._eol):
            raise _fail("line too long, truncated or with the wrong line ending")
        text = line[: -len(self._eol)]
        if not text or len(text) % 4 or not _LINE.fullmatch(text):
            raise _fail("malformed base64 line")
        if len(text) < _COLUMNS or text.endswith(b"="):
            self._last_seen = True
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error as err:
            raise _fail("invalid base64") from err
        if base64.b64encode(data) != text:
            raise _fail("non-canonical base64")
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._pending = self._next_line()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def dearmor(src: BinaryIO) -> io.BufferedReader:
    """A buffered binary reader of the age file armored in ``src``."""
    return io.BufferedReader(DearmorReader(src))


class ArmorWriter:
    """Armors what is written to it into ``dst``; ``close()`` writes the END line, not closing dst."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self._buffer = bytearray()
        self._dst.write(BEGIN + b"\n")

    def write(self, data: bytes) -> int:
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
