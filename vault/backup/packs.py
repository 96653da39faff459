"""Packs: many small blobs in one object, with a trailer that lists them (docs/FORMAT.md, Backups)."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field

from vault.errors import IntegrityError
from vault.i18n import N_

#: Blobs smaller than this are packed together; larger ones get a pack of their own.
SMALL_BLOB = 1 << 20
#: A pack is closed once it holds this many bytes of blobs (8-16 MiB keeps S3 requests few).
PACK_TARGET = 12 << 20
_TRAILER = struct.Struct("<I")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class PackBuilder:
    """Collects blobs in memory until the pack is full; ``finish()`` gives (pack id, bytes, entries)."""

    parts: list[bytes] = field(default_factory=list)
    entries: list[list] = field(default_factory=list)  # [blob id, offset, length]
    size: int = 0

    def add(self, blob_id: str, data: bytes) -> None:
        self.entries.append([blob_id, self.size, len(data)])
        self.parts.append(data)
        self.size += len(data)

    def __len__(self) -> int:
        return len(self.entries)

    def finish(self) -> tuple[str, bytes, list[list]]:
        pack_id, parts, entries = self.finish_parts()
        return pack_id, b"".join(parts), entries

    def finish_parts(self) -> tuple[str, list[bytes], list[list]]:
        """Like ``finish`` but the pack's bytes as the list of its parts, hashed in place, never joined."""
        header = json.dumps({"format": 1, "blobs": self.entries}, separators=(",", ":")).encode()
        parts = [*self.parts, header, _TRAILER.pack(len(header))]
        h = hashlib.sha256()
        for part in parts:
            h.update(part)
        return h.hexdigest(), parts, self.entries


def read_trailer(pack_id: str, data: bytes) -> list[list]:
    """The blob list of a pack, after checking that the pack's bytes hash to its id."""
    if sha256_hex(data) != pack_id:
        raise IntegrityError(N_("pack {pack_id}: damaged (its bytes do not hash to its name)"), pack_id=pack_id[:16])
    try:
        (n,) = _TRAILER.unpack(data[-4:])
        header = json.loads(data[-4 - n : -4])
        entries = header["blobs"]
        if header.get("format") != 1 or any(off + ln > len(data) - 4 - n for _, off, ln in entries):
            raise ValueError
        return entries
    except (struct.error, ValueError, KeyError, TypeError):
        raise IntegrityError(N_("pack {pack_id}: damaged (its blob list does not parse)"), pack_id=pack_id[:16]) from None


def blobs_of(pack_id: str, data: bytes, entries: list[list]) -> dict[str, bytes]:
    """Cut the blobs out of a pack and check each against its id; damage names the blob."""
    out = {}
    for blob_id, off, ln in entries:
        blob = data[off : off + ln]
        if sha256_hex(blob) != blob_id:
            raise IntegrityError(N_("pack {pack_id}: blob {blob_id} is damaged"), pack_id=pack_id[:16], blob_id=blob_id[:16])
        out[blob_id] = blob
    return out
