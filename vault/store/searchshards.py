"""The search index's shards: n-gram postings and dossier rows, as byte strings the caller seals.

A gram shard maps each n-gram key (a trigram, or a two-character CJK bigram or word prefix) to its
postings, one unsigned 64-bit little-endian integer per occurrence (``encode``), in ascending order
(so a dossier's postings are contiguous; an index written before that order was kept is sorted as it
is read, and rewritten in order by the next write). A dossier shard
maps dossier ids to their indexed row: archive number, profile version, digest, writer, fields and
the folded values. A shard file's plaintext is padded to a multiple of ``PAD`` (``padded``). Nothing
here encrypts: ``vault.archive.searchwrite`` seals each shard into its own age file.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from bisect import bisect_left
from typing import Any, Iterator

from vault.errors import FormatError
from vault.i18n import N_
from vault.store import jsontext

#: Shard bodies are padded with zero bytes to a multiple of this many bytes.
PAD = 4096
#: The longest value position a posting records; characters beyond it are not indexed.
MAX_POS = (1 << 15) - 1
MAX_LEN = (1 << 16) - 1
#: Entries per dossier a posting can name (number, name, legal rep, address, other names, contacts).
MAX_ENTRIES = 32
#: Dossiers one dossier shard can hold (the slot's low 16 bits).
PER_SHARD = 1 << 16


def encode(slot: int, k: int, field: int, ws: bool, pos: int, length: int) -> int:
    """A posting: ``slot`` (24 bits: dossier shard, index in it), entry ``k`` (5), ``field`` (3),
    word start (1), position (15) and the value's length (16, capped)."""
    return (slot << 40) | (k << 35) | (field << 32) | (int(ws) << 31) | (pos << 16) | min(length, MAX_LEN)


def entry_key(p: int) -> int:
    """What identifies the entry a posting is in: slot, entry and field (the top 32 bits)."""
    return p >> 32


def padded(plaintext: bytes) -> bytes:
    """A shard file's plaintext padded with zero bytes (which readers ignore) to a multiple of ``PAD``."""
    return plaintext + b"\0" * (-len(plaintext) % PAD)


class GramShard:
    """One gram shard: postings per key, decoded lazily from its body and re-encoded when changed.
    ``get`` returns a key's postings in ascending order; ``ordered`` says whether the body keeps
    them so (False for a shard an earlier version wrote: each key is sorted when read)."""

    def __init__(self, body: bytes | None = None, *, ordered: bool = True) -> None:
        self._dir: dict[str, list[int]] = {}
        self._mv = memoryview(b"")
        self._arrays: dict[str, array] = {}
        self._appended: set[str] = set()  # keys whose array had postings appended since it was sorted
        self.ordered = ordered
        if body is None:
            return
        try:
            (n,) = struct.unpack_from("<I", body, 0)
            self._dir = jsontext.loads(body[4:4 + n])
            self._mv = memoryview(body)[4 + n:]
            if not isinstance(self._dir, dict):
                raise ValueError
            for off, cnt in self._dir.values():
                if off < 0 or cnt < 0 or (off + cnt) * 8 > len(self._mv):
                    raise ValueError
        except (ValueError, TypeError, struct.error, UnicodeDecodeError):
            raise FormatError(N_("search index: damaged gram shard")) from None

    def _read(self, key: str) -> array:
        arr = array("Q")
        where = self._dir.get(key)
        if where is not None:
            arr.frombytes(self._mv[where[0] * 8:(where[0] + where[1]) * 8])
            if sys.byteorder == "big":
                arr.byteswap()
        return arr

    def get(self, key: str) -> array:
        """The postings of ``key``, ascending (do not change the array: ``add``, ``drop_slot``)."""
        arr = self._arrays.get(key)
        if arr is None:
            arr = self._read(key)
            if not self.ordered and len(arr) > 1:
                arr = self._arrays[key] = array("Q", sorted(arr))
        elif key in self._appended:
            arr = self._arrays[key] = array("Q", sorted(arr))
            self._appended.discard(key)
        return arr

    def stored_in_order(self, key: str) -> bool:
        """Whether the body holds ``key``'s postings strictly ascending (``vault check``)."""
        arr = self._read(key)
        return all(a < b for a, b in zip(arr, arr[1:]))

    def keys(self) -> Iterator[str]:
        yield from (set(self._dir) | set(self._arrays))

    def add(self, key: str, posting: int) -> None:
        arr = self._arrays.get(key)
        if arr is None:
            arr = self._arrays[key] = array("Q", self.get(key))
        arr.append(posting)
        self._appended.add(key)

    def drop_slot(self, key: str, slot: int) -> None:
        arr = self.get(key)
        lo = bisect_left(arr, slot << 40)  # a slot's postings are contiguous in ascending order
        hi = bisect_left(arr, (slot + 1) << 40, lo)
        if hi > lo:
            self._arrays[key] = arr[:lo] + arr[hi:]

    def body(self) -> bytes:
        """The shard's body, every key's postings ascending; those of keys that were not changed are
        copied as they were read (from a shard in order)."""
        directory, parts, off = {}, [], 0
        for key in sorted(self.keys()):
            if key not in self._arrays and self.ordered:
                where = self._dir[key]
                raw = self._mv[where[0] * 8:(where[0] + where[1]) * 8]
                n = where[1]
            else:
                arr = self.get(key)
                if sys.byteorder == "big":
                    arr = array("Q", arr)
                    arr.byteswap()
                raw, n = memoryview(arr.tobytes()), len(arr)
            if not n:
                continue
            directory[key] = [off, n]
            parts.append(raw)
            off += n
        head = json.dumps(directory, ensure_ascii=False, separators=(",", ":")).encode()
        return struct.pack("<I", len(head)) + head + b"".join(parts)


class DossierShard:
    """One dossier shard: ``{id: row}`` and the next free index; a row is
    ``[index, number, version, sealed_sha256, by, fields, [[field, value], ...]]``."""

    def __init__(self, body: bytes | None = None) -> None:
        self.next = 0
        self.rows: dict[str, list[Any]] = {}
        self._by_index: dict[int, tuple[str, list[Any]]] | None = None
        if body is None:
            return
        try:
            data = jsontext.loads(body.rstrip(b"\0"))
            self.next, self.rows = int(data["next"]), data["rows"]
            if not isinstance(self.rows, dict) or not all(isinstance(r, list) and len(r) == 7 for r in self.rows.values()):
                raise ValueError
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            raise FormatError(N_("search index: damaged dossier shard")) from None

    def by_index(self, i: int) -> tuple[str, list[Any]] | None:
        if self._by_index is None:
            self._by_index = {r[0]: (d, r) for d, r in self.rows.items()}
        return self._by_index.get(i)

    def put(self, dossier: str, row: list[Any]) -> int:
        old = self.rows.get(dossier)
        if old is not None:
            i = old[0]
        else:
            i = self.next
            if i >= PER_SHARD:
                raise FormatError(N_("search index: a dossier shard is full"), hint=N_("run 'vault index rebuild'"))
            self.next += 1
        self.rows[dossier] = [i, *row]
        self._by_index = None
        return i

    def remove(self, dossier: str) -> list[Any] | None:
        self._by_index = None
        return self.rows.pop(dossier, None)

    def body(self) -> bytes:
        return json.dumps({"next": self.next, "rows": self.rows}, ensure_ascii=False,
                          separators=(",", ":"), sort_keys=True).encode()
