"""Packs: many small blobs in one object, with a trailer that lists them (docs/FORMAT.md, Backups)."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from vault.errors import IntegrityError
from vault.i18n import Message, N_
from vault.store import jsontext

#: Blobs smaller than this are packed together; larger ones get a pack of their own.
SMALL_BLOB = 1 << 20
#: A pack is closed once it holds this many bytes of blobs (8-16 MiB keeps S3 requests few).
PACK_TARGET = 12 << 20
#: ... or this many blobs, so that its header (~90 bytes a blob) stays under ``MAX_HEADER``.
PACK_BLOBS = 65_536
#: The longest header a pack read as a stream may have (a longer one is damage): a forged trailer
#: naming the whole pack as its header must not make a reader hold the pack.
MAX_HEADER = 16 << 20
_TRAILER = struct.Struct("<I")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


#: The pack format new packs are written in (docs/FORMAT.md §16.2); format 1 packs are still read.
FORMAT = 2


def header_bytes(entries: list[list]) -> bytes:
    return json.dumps({"format": FORMAT, "blobs": entries}, separators=(",", ":")).encode()


@dataclass
class PackBuilder:
    """Collects blobs in memory until the pack is full; ``finish()`` gives (pack id, bytes, entries)."""

    parts: list[bytes] = field(default_factory=list)
    entries: list[list] = field(default_factory=list)  # [blob id, offset, length]
    size: int = 0

    def add(self, blob_id: str, data: bytes) -> None:
        """Add a blob whose id the caller computed from ``data`` (the pack's id relies on it)."""
        self.entries.append([blob_id, self.size, len(data)])
        self.parts.append(data)
        self.size += len(data)

    def __len__(self) -> int:
        return len(self.entries)

    def finish(self) -> tuple[str, bytes, list[list]]:
        pack_id, parts, entries = self.finish_parts()
        return pack_id, b"".join(parts), entries

    def finish_parts(self) -> tuple[str, list[bytes], list[list]]:
        """Like ``finish`` but the pack's bytes as the list of its parts, never joined.

        The id is the hash of the header alone: the header names every blob by its hash, so the
        blobs, hashed once already for their ids, are not hashed a second time (FORMAT §16.2).
        """
        header = header_bytes(self.entries)
        return sha256_hex(header), [*self.parts, header, _TRAILER.pack(len(header))], self.entries


def single_tail(blob_id: str, size: int) -> tuple[str, bytes]:
    """(pack id, what follows the blob) of the pack of one large blob: its header and trailer."""
    header = header_bytes([[blob_id, 0, size]])
    return sha256_hex(header), header + _TRAILER.pack(len(header))


def header_of(size: int, read_at: Callable[[int, int], bytes], *, most: int | None = None) -> bytes | None:
    """The header's bytes of a pack of ``size`` bytes as its trailer sizes them (FORMAT §16.2),
    ``read_at(offset, length)`` giving the pack's bytes there: a pack held in memory, a stream that
    seeks, the last bytes of a pass. None where the trailer cannot size one: a pack under four bytes,
    or a header that would not fit before the trailer or is longer than ``most``."""
    if size < 4:
        return None
    trailer = read_at(size - 4, 4)
    if len(trailer) < 4:  # (cut short meanwhile)
        return None
    (n,) = _TRAILER.unpack(trailer)
    if n > size - 4 or (most is not None and n > most):
        return None
    return read_at(size - 4 - n, n)


def _header_raw(data: bytes) -> bytes | None:
    """The header's bytes of a pack held in memory (``header_of``)."""
    return header_of(len(data), lambda off, n: data[off : off + n])


def _entries(header: Any, end: int, *, tiled: bool) -> list[list] | None:
    """The blob list of a parsed header, each entry [hex id, offset, length] inside ``end`` bytes;
    with ``tiled``, the blobs must also follow each other from offset 0 to ``end`` with no gap."""
    entries = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(entries, list):
        return None
    pos = 0
    for e in entries:
        if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and _HEX64.match(e[0])
                and type(e[1]) is int and type(e[2]) is int and 0 <= e[1] and 0 <= e[2] and e[1] + e[2] <= end):
            return None
        if tiled and e[1] != pos:
            return None
        pos = e[1] + e[2]
    if tiled and (pos != end or not entries):
        return None
    return entries


#: What can be wrong with a pack (``PackDamaged.reason``).
NOT_ITS_NAME = N_("its bytes do not hash to its name")
NO_BLOB_LIST = N_("its blob list does not parse")
BAD_BLOB = N_("blob {blob_id} does not hash to its id")


class PackDamaged(IntegrityError):
    """A pack that is not what its name says; ``reason`` says what, without naming the pack (a caller
    that names it its own way, as ``backup verify`` does with the object's name, uses that)."""

    def __init__(self, pack_id: str, reason: Message) -> None:
        super().__init__(N_("pack {pack_id}: damaged ({reason})"), pack_id=pack_id[:16], reason=reason)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (PackDamaged, (self.message.params["pack_id"], self.reason))


def read_trailer(pack_id: str, data: bytes) -> list[list]:
    """The blob list of a pack, after checking that the pack is exactly what its id names.

    Format 2: the id is the hash of the header; the blobs the header lists must fill the bytes before
    it, each hashing to its id. Format 1 (older repositories): the id is the hash of all the bytes.
    (``check_streamed``'s rules, for a pack held in memory.)
    """
    view = memoryview(data)
    return check_streamed(pack_id, _header_raw(data), len(data),
                          lambda off, ln: hashlib.sha256(view[off : off + ln]).hexdigest(), lambda: sha256_hex(data))


def blobs_of(pack_id: str, data: bytes, entries: list[list]) -> dict[str, bytes]:
    """Cut the blobs out of a pack and check each against its id; damage names the blob."""
    out = {}
    for blob_id, off, ln in entries:
        blob = data[off : off + ln]
        if sha256_hex(blob) != blob_id:
            raise IntegrityError(N_("pack {pack_id}: blob {blob_id} is damaged"), pack_id=pack_id[:16], blob_id=blob_id[:16])
        out[blob_id] = blob
    return out


def check_streamed(pack_id: str, raw: bytes | None, size: int, digest: Callable[[int, int], str | None],
                   whole: Callable[[], str]) -> list[list]:
    """The check of a pack against its id (``read_trailer``'s rules) where it is read as a stream,
    not held: ``raw`` is its header's bytes (None where the trailer does not size one), ``size`` its length, ``digest(offset, length)``
    the SHA-256 of a range of it and ``whole()`` of all of it — each asked only where the rule needs it."""
    try:
        header = jsontext.loads(raw) if raw is not None else None
    except ValueError:
        header = None
    if isinstance(header, dict) and header.get("format") == FORMAT and raw is not None:
        if sha256_hex(raw) != pack_id:
            raise PackDamaged(pack_id, Message(NOT_ITS_NAME))
        entries = _entries(header, size - 4 - len(raw), tiled=True)
        if entries is None:
            raise PackDamaged(pack_id, Message(NO_BLOB_LIST))
        for blob_id, off, ln in entries:
            if digest(off, ln) != blob_id:
                raise PackDamaged(pack_id, Message(BAD_BLOB, blob_id=blob_id[:16]))
        return entries
    if whole() != pack_id:
        raise PackDamaged(pack_id, Message(NOT_ITS_NAME))
    entries = None
    if isinstance(header, dict) and header.get("format") == 1 and raw is not None:
        entries = _entries(header, size - 4 - len(raw), tiled=False)
    if entries is None:
        raise PackDamaged(pack_id, Message(NO_BLOB_LIST))
    return entries


def header_entries(raw: bytes | None, size: int) -> list[list]:
    """The (offset, length) ranges a format-2 header lists (nothing for any other): what a streamed
    check hashes besides the index's."""
    try:
        header = jsontext.loads(raw) if raw is not None else None
    except ValueError:
        return []
    if not (isinstance(header, dict) and header.get("format") == FORMAT and raw is not None):
        return []
    return _entries(header, size - 4 - len(raw), tiled=True) or []
