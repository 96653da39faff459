"""The age v1 header: strict parsing, canonical serialization and the header MAC."""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import re
from dataclasses import dataclass
from typing import BinaryIO, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import AuthenticationError, FormatError
from vault.i18n import N_

VERSION_LINE = b"age-encryption.org/v1\n"
_VERSION_PREFIX = b"age-encryption.org/"
_COLUMNS = 64
# Caps on what an untrusted header may make us buffer (memory exhaustion):
# one line (a hybrid stanza's argument line is ~1.5 KB) and the whole header.
MAX_LINE = 64 * 1024
MAX_HEADER = 16 * 1024 * 1024

_B64_CHARS = re.compile(rb"[A-Za-z0-9+/]*")
_VCHARS = re.compile(rb"[\x21-\x7e]+")


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: ``-> type args...`` and its decoded body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class Header:
    """A parsed header: its stanzas, its MAC and the bytes the MAC covers."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes

    def verify_mac(self, file_key: bytes) -> None:
        """Raise AuthenticationError unless the MAC matches ``file_key``."""
        if not hmac.compare_digest(compute_mac(file_key, self.mac_input), self.mac):
            raise AuthenticationError(N_("age header MAC mismatch: the header was tampered with"))


def b64encode(data: bytes) -> str:
    """Canonical unpadded standard base64."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str | bytes) -> bytes:
    """Decode unpadded base64, rejecting padding, other characters and non-canonical encodings.

    Non-canonical encodings (non-zero unused bits) would let one header have several
    byte representations, which breaks the promise that age files are not malleable.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if not _B64_CHARS.fullmatch(raw) or len(raw) % 4 == 1:
        raise FormatError(N_("age header: invalid base64"))
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error as err:
        raise FormatError(N_("age header: invalid base64")) from err
    if base64.b64encode(data).rstrip(b"=") != raw:
        raise FormatError(N_("age header: non-canonical base64"))
    return data


def compute_mac(file_key: bytes, mac_input: bytes) -> bytes:
    """HMAC-SHA-256 keyed with HKDF-SHA-256(ikm = file key, salt = empty, info = "header")."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=b"header").derive(file_key)
    return hmac.digest(key, mac_input, "sha256")


def _stanza_bytes(stanza: Stanza) -> bytes:
    words = [stanza.type, *stanza.args]
    for word in words:
        if not _VCHARS.fullmatch(word.encode("ascii", "replace")) or not word.isascii():
            raise ValueError(f"age stanza argument is empty or not VCHARs: {word!r}")
    body = b64encode(stanza.body).encode("ascii")
    lines = [body[i : i + _COLUMNS] for i in range(0, len(body), _COLUMNS)]
    if len(body) % _COLUMNS == 0:
        lines.append(b"")  # the body always ends with a short (possibly empty) line
    return b"-> " + " ".join(words).encode("ascii") + b"\n" + b"".join(line + b"\n" for line in lines)


def serialize(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    """The complete header for ``stanzas``, MAC'd with ``file_key``."""
    if not stanzas:
        raise ValueError("an age header needs at least one stanza")
    mac_input = VERSION_LINE + b"".join(_stanza_bytes(s) for s in stanzas) + b"---"
    return mac_input + b" " + b64encode(compute_mac(file_key, mac_input)).encode("ascii") + b"\n"


class _LineReader:
    """Reads LF-terminated lines with per-line and total caps, keeping what it read."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.consumed = bytearray()

    def line(self) -> bytes:
        line = self._src.readline(MAX_LINE + 1)
        self.consumed += line
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE:
                raise FormatError(N_("age header: line too long"))
            raise FormatError(N_("age header: unexpected end of file"))
        if len(self.consumed) > MAX_HEADER:
            raise FormatError(N_("age header: header too large"))
        return line[:-1]


def _parse_arg_line(line: bytes) -> tuple[str, tuple[str, ...]]:
    words = line[3:].split(b" ")
    # Empty arguments (double or trailing spaces) and non-VCHAR bytes (CR, tabs,
    # 8-bit) are rejected so every header has exactly one encoding.
    if not all(_VCHARS.fullmatch(w) for w in words):
        raise FormatError(N_("age header: malformed stanza argument line"))
    decoded = [w.decode("ascii") for w in words]
    return decoded[0], tuple(decoded[1:])


# The header the vault writes for its own files (one stanza of one argument, an empty body): read
# with one match, not line by line. Anything else — malformed, or longer than one line may be, so
# that the line reader's caps decide — is ``parse``'s to read and to name; both give the same Header
# for the bytes this takes.
_ONE_STANZA = re.compile(rb"age-encryption\.org/v1\n-> ([\x21-\x7e]+) ([\x21-\x7e]+)\n\n--- ([A-Za-z0-9+/]{43})\n")


def parse_bytes(data: bytes | memoryview) -> tuple[Header, int]:
    """``parse`` of a header at the start of ``data`` held in memory: (the header, where the payload starts)."""
    m = _ONE_STANZA.match(data)
    if m is None or m.end() > MAX_LINE:
        src = io.BytesIO(data)
        return parse(src), src.tell()
    kind, arg, mac = m.groups()
    return Header((Stanza(kind.decode("ascii"), (arg.decode("ascii"),), b""),), b64decode(mac),
                  bytes(data[:m.start(3) - 1])), m.end()


def parse(src: BinaryIO) -> Header:
    """Read one header from ``src``, leaving it positioned at the payload start."""
    reader = _LineReader(src)
    version = reader.line()
    if version + b"\n" != VERSION_LINE:
        if not version.startswith(_VERSION_PREFIX):
            raise FormatError(N_("not an age file"))
        if not _VCHARS.fullmatch(version):
            raise FormatError(N_("age header: malformed version line"))  # e.g. CRLF line ends
        raise FormatError(N_("age header: unsupported version"))
    stanzas: list[Stanza] = []
    line = reader.line()
    while line.startswith(b"-> "):
        kind, args = _parse_arg_line(line)
        chunks = []
        while True:
            body_line = reader.line()
            if len(body_line) > _COLUMNS or not _B64_CHARS.fullmatch(body_line):
                raise FormatError(N_("age header: malformed stanza body line"))
            chunks.append(body_line)
            if len(body_line) < _COLUMNS:
                break
        stanzas.append(Stanza(kind, args, b64decode(b"".join(chunks))))
        line = reader.line()
    if not stanzas:
        raise FormatError(N_("age header: no recipient stanzas"))
    if not line.startswith(b"--- "):
        raise FormatError(N_("age header: malformed stanza or MAC line"))
    mac_text = line[4:]
    if len(mac_text) != 43:
        raise FormatError(N_("age header: malformed MAC"))
    mac = b64decode(mac_text)
    mac_input = bytes(reader.consumed[: -len(line) - 1]) + b"---"
    return Header(tuple(stanzas), mac, mac_input)
