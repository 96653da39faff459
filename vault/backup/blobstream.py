"""Restoring blobs as streams, so that memory stays bounded whatever the size of a document.

Each pack is read once, front to back, and each blob goes to its file in chunks while it is hashed.

A blob is renamed into place only once its bytes hash to its name; a damaged, short or missing blob
leaves no file behind and stops the restore with an IntegrityError that names it.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Generator, Iterable, TypeVar

from vault.backup.repo import Repo, data_name
from vault.errors import IntegrityError, NotFoundError
from vault.i18n import Message, N_
from vault.store import atomic_writer, make_dir
from vault.store.syncing import WritebackWriter
from vault.store.hashing import HashingWriter

CHUNK = 1 << 20
T = TypeVar("T")


def restore_blobs(repo: Repo, index: dict[str, tuple[str, int, int]], by_blob: dict[str, list[list[Any]]],
                  dest: Path, step: Callable[[int], None] = lambda n: None) -> list[Path]:
    """Write every file of ``by_blob`` (blob id -> tree entries [path, blob, size, mode]) under ``dest``.

    :return: the files written (not yet synced: the caller syncs them all at once).
    """
    by_pack: dict[str, list[str]] = defaultdict(list)
    for b in by_blob:
        if b not in index:
            raise IntegrityError(N_("{url}: blob {b} is in no pack"), hint=N_("run 'vault backup verify'"), url=repo.url, b=b[:16])
        by_pack[index[b][0]].append(b)
    written: list[Path] = []
    for pack_id, wanted in sorted(by_pack.items()):
        name = data_name(pack_id)
        try:
            src = repo.open(name)
        except NotFoundError:
            raise IntegrityError(N_("{url}: {name} is missing"), hint=N_("run 'vault backup verify'"), url=repo.url, name=name) from None
        try:
            pos = 0
            for b in sorted(wanted, key=lambda x: index[x][1]):
                _, off, ln = index[b]
                if off < pos:
                    raise IntegrityError(N_("{url}: the index has overlapping blobs in {name}"),
                                         hint=N_("run 'vault backup verify'"), url=repo.url, name=name)
                skip(src, off - pos, name, repo.url)
                first, *others = by_blob[b]
                path = dest / first[0]
                _copy_blob(src, ln, b, path, first[3], Message(N_("{url}: blob {b} in {name}"), url=repo.url, b=b[:16], name=name), step)
                written.append(path)
                for entry in others:  # the same content at several paths: copied from the first
                    other = dest / entry[0]
                    make_dir(other.parent, parents=True, sync=False)
                    with open(path, "rb") as f, atomic_writer(other, mode=entry[3] & 0o777, sync=False) as out:
                        shutil.copyfileobj(f, out, CHUNK)
                    written.append(other)
                    step(ln)
                pos = off + ln
        finally:
            close(src)
    return written


def skip(src: BinaryIO, n: int, name: str, url: str) -> None:
    if n <= 0:
        return
    seekable = getattr(src, "seekable", None)
    if seekable is not None and seekable():
        try:
            src.seek(n, 1)
        except (OverflowError, ValueError, OSError):  # (past what a file can hold: a forged offset)
            raise IntegrityError(N_("{url}: {name} is shorter than the index says"), hint=N_("run 'vault backup verify'"),
                                 url=url, name=name) from None
        return
    while n:
        got = src.read(min(n, CHUNK))
        if not got:
            raise IntegrityError(N_("{url}: {name} is shorter than the index says"), hint=N_("run 'vault backup verify'"), url=url, name=name)
        n -= len(got)


def close(src: Any) -> None:
    """Close what a target's ``get`` or ``open`` gave, if it can be closed."""
    getattr(src, "close", lambda: None)()


def read_exactly(src: BinaryIO | Window, n: int) -> bytes:
    """The next ``n`` bytes of ``src`` (fewer only where it ends)."""
    out = bytearray()  # (in pieces: a forged length must not make one allocation of its size)
    while len(out) < n and (got := src.read(min(n - len(out), CHUNK))):
        out += got
    return bytes(out)


def _copy_blob(src: BinaryIO, length: int, blob: str, path: Path, mode: int, what: str,
               step: Callable[[int], None]) -> None:
    make_dir(path.parent, parents=True, sync=False)
    with atomic_writer(path, mode=mode & 0o777, sync=False) as f:
        # A large piece is hashed on a helper thread while it is written, and a large blob's
        # write-back starts while it is restored, so that the final sync is short.
        with WritebackWriter(f) as wb, HashingWriter(wb) as out:
            left = length
            while left:
                chunk = src.read(min(left, CHUNK))
                if not chunk:
                    raise IntegrityError(N_("{what} is cut short"), hint=N_("run 'vault backup verify'"), what=what)
                out.write(chunk)
                left -= len(chunk)
                step(len(chunk))
        if out.h.hexdigest() != blob:  # raised inside the block: the temporary file is removed, not renamed
            raise IntegrityError(N_("{what} is damaged"), hint=N_("run 'vault backup verify'"), what=what)


class Window(io.RawIOBase):
    """The next ``length`` bytes of ``src``, then its end: one blob of a pack read in place."""

    def __init__(self, src: BinaryIO, length: int) -> None:
        self._src, self._left = src, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any, /) -> int:
        if self._left <= 0:
            return 0
        data = self._src.read(min(len(buffer), self._left, CHUNK))
        buffer[: len(data)] = data
        self._left -= len(data) if data else self._left  # (the stream ended early: so does the window)
        return len(data)

    def read(self, size: int = -1, /) -> bytes:
        return super().read(size) or b""

    def drain(self) -> None:
        """Read what is left of the window, so that ``src`` stands just after it."""
        while self.readinto(bytearray(min(max(self._left, 0), CHUNK))):
            pass


def each_in_place(open_pack: Callable[[], BinaryIO], wanted: Iterable[tuple[T, int, int]], name: str, url: str, *,
                  take: Callable[[T], bool] = lambda item: True) -> Generator[tuple[T, Window], None, None]:
    """For each ``(item, offset, length)`` of ``wanted`` that ``take`` accepts, in the order of their
    offsets, the item and a ``Window`` on that range of the pack ``open_pack()`` opens (named ``name``
    of target ``url`` in errors): the pack is read front to back, in place, and from its start again
    only where the index says a range begins before the last one ended (overlapping blobs). What the
    caller leaves unread of a window is read past before the next. Close the iterator (``close``)
    to close the pack."""
    src, pos = open_pack(), 0
    try:
        for item, off, ln in sorted(wanted, key=lambda w: w[1]):
            if not take(item):
                continue
            if off < pos:  # (blobs the index says overlap: read the pack again)
                close(src)
                src, pos = open_pack(), 0
            skip(src, off - pos, name, url)
            window = Window(src, ln)
            yield item, window
            window.drain()
            pos = off + ln
    finally:
        close(src)


@dataclass
class Hashed:
    """What ``hash_ranges`` read: the SHA-256 of each byte range it was asked for that the stream holds
    whole, the stream's length, the SHA-256 of all of it (if asked) and its last bytes (if asked)."""

    digests: dict[tuple[int, int], str]
    size: int
    whole: str | None
    tail: bytes


def hash_ranges(src: BinaryIO, ranges: Iterable[tuple[int, int]], *, whole: bool = False, tail: int = 0,
                limit: int | None = None) -> Hashed:
    """Read ``src`` once, front to back, in 1 MiB pieces, hashing each (offset, length) range of it as
    it goes (ranges may overlap): memory follows the number of ranges, not the bytes; time follows
    them to ``limit`` bytes at most."""
    todo = sorted(set(ranges))
    digests: dict[tuple[int, int], str] = {}
    active: dict[tuple[int, int], Any] = {}
    every = hashlib.sha256() if whole else None
    last = bytearray()
    nxt = pos = 0
    while chunk := src.read(CHUNK if limit is None else min(CHUNK, limit - pos)):
        end = pos + len(chunk)
        while nxt < len(todo) and todo[nxt][0] < end:
            active[todo[nxt]] = hashlib.sha256()
            nxt += 1
        view = memoryview(chunk)
        for (off, ln), h in list(active.items()):
            h.update(view[max(off, pos) - pos : min(off + ln, end) - pos])
            if off + ln <= end:
                digests[(off, ln)] = h.hexdigest()
                del active[(off, ln)]
        if every is not None:
            every.update(chunk)
        if tail:
            last += chunk
            del last[: max(0, len(last) - tail)]
        pos = end
    for off, ln in todo[nxt:]:  # (empty ranges at or past the end)
        if ln == 0 and off <= pos:
            digests[(off, ln)] = hashlib.sha256(b"").hexdigest()
    return Hashed(digests, pos, every.hexdigest() if every is not None else None, bytes(last))
