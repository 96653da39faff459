"""Reading, hashing and packing new blobs, and putting packs, on threads or worker processes: the bulk of a backup run."""

from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Container, Generator, Iterator, Sequence

from vault import forked
import vault.backup.packs as packs
from vault.backup.repo import Repo, data_name
from vault.store import open_regular, read_regular, seam

UPLOADERS = 4
#: Threads reading and hashing files, and how many files they may be ahead of the packer.
HASHERS = 2
READ_AHEAD = 16
#: A pass with at least this many bytes to read forks worker processes (``Workers``), each reading,
#: hashing, packing and putting its share of the files; a smaller pass runs on threads (``hashed``).
FORK_BYTES = 64 << 20
#: The share of the files a worker is handed at a time: a few packs' worth at least (its last pack
#: may be short), enough shares for the workers to end together, and at most a few packs' worth (an
#: interrupted or failed run waits for the shares in flight: two or three of them per worker).
SHARE_BYTES = 4 * packs.PACK_TARGET
SHARE_MAX = 8 * packs.PACK_TARGET


def hash_file(path: str | Path, size: int) -> tuple[str, bytes | None]:
    """SHA-256 of a file, read once: (blob id, its bytes when small enough to pack, else None).

    ``size`` is what the file's status said: a small file is read with one call of that size (plus
    one that finds the end), instead of through a buffered file object and a 1 MiB read — a third
    of the CPU over the ~12,000 files of a first run. A large file is a pack of its own, put by
    reading the file again; its pack id needs no second hash of the bytes, only of the pack's
    header (FORMAT §16.2).
    """
    f = open_regular(path)  # (a staged link: a file the capture found regular, never followed)
    fd = f.fileno()
    try:
        data = os.read(fd, min(max(size, 0), packs.SMALL_BLOB - 1) + 1)
        while len(data) < packs.SMALL_BLOB:
            more = os.read(fd, min(packs.SMALL_BLOB - len(data), 1 << 16))
            if not more:
                return hashlib.sha256(data).hexdigest(), data
            data += more
        h = hashlib.sha256(data)
        del data
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest(), None
    finally:
        f.close()


class Chain(io.RawIOBase):
    """A file followed by some bytes, read as one stream (a large blob's pack without loading it)."""

    def __init__(self, f: io.BufferedReader, tail: bytes) -> None:
        self.f, self.tail = f, tail

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any, /) -> int:
        n = self.f.readinto(b)
        if n:
            return n
        n = min(len(b), len(self.tail))
        b[:n], self.tail = self.tail[:n], self.tail[n:]
        return n


class Parts(io.RawIOBase):
    """A pack's parts (blobs, header, trailer) read as one seekable stream without joining them first.

    Like any raw stream, ``read(n)`` may return fewer than ``n`` bytes (``b""`` only at the end): it
    hands out a whole part as is when it fits, so a target that writes what it reads copies each
    blob once, into the kernel. ``read()`` gives the whole rest.
    """

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.starts = list(itertools.accumulate(map(len, parts), initial=0))  # last: the total size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.starts[-1]}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self.pos = base + offset
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        total = self.starts[-1]
        if self.pos >= total:
            return b""
        if n is None or n < 0:
            out = b"".join(self.parts) if self.pos == 0 else b"".join(self._rest())
            self.pos = total
            return out
        if n == 0:
            return b""
        # A raw stream may return fewer bytes than asked: at most the rest of the current part.
        i = bisect.bisect_right(self.starts, self.pos) - 1
        off = self.pos - self.starts[i]
        part = self.parts[i]
        out = part if off == 0 and len(part) <= n else part[off : off + n]
        self.pos += len(out)
        return out

    def _rest(self) -> Iterator[bytes]:
        i = bisect.bisect_right(self.starts, self.pos) - 1
        yield self.parts[i][self.pos - self.starts[i]:]
        yield from self.parts[i + 1:]

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b: Any, /) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class Steps:
    """Progress steps that may arrive before the bar exists (uploads start while files are still hashed)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.early = 0
        self.step: Callable[[int], None] | None = None

    def __call__(self, n: int) -> None:
        with self.lock:
            if self.step is None:
                self.early += n
                return
            self.step(n)

    def start(self, step: Callable[[int], None]) -> None:
        with self.lock:
            self.step = step
            if self.early:
                step(self.early)


class Uploader:
    """Packs new blobs and uploads packs on a few threads; remembers what it uploaded for the index.

    A full pack is written on the upload threads (file writes release the GIL), overlapping with
    reading and hashing the next files; its id is the hash of its header alone, whose blob ids the
    hashing threads computed (FORMAT §16.2), so no byte is hashed twice.
    """

    def __init__(self, repo: Repo, step: Callable[[int], None], known: Container[str]) -> None:
        self.repo, self.step, self.known = repo, step, known
        self.pool = ThreadPoolExecutor(UPLOADERS)
        self.pending: deque[Future] = deque()
        self.builder = packs.PackBuilder()
        self.packs: dict[str, dict[str, Any]] = {}
        self.seen: set[str] = set()
        self.bytes_new = 0

    def add(self, blob: str, path: str | Path, size: int, data: bytes | None) -> None:
        """A file just hashed (``data``: its bytes, if it was small): packed unless the target holds
        its blob (``known``) or this run packed it already."""
        if blob in self.known or blob in self.seen:
            return
        self.seen.add(blob)
        if size >= packs.SMALL_BLOB:
            self.add_large(blob, path, size)
        else:
            self.add_small(blob, data if data is not None else read_regular(path))

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > UPLOADERS * 2:
            self.pending.popleft().result()
        while self.pending and self.pending[0].done():
            self.pending.popleft().result()  # fail early: an upload error stops the run

    def add_small(self, blob: str, data: bytes) -> None:
        self.builder.add(blob, data)
        self.bytes_new += len(data)
        if self.builder.size >= packs.PACK_TARGET or len(self.builder) >= packs.PACK_BLOBS:
            self.flush()

    def flush(self) -> None:
        if not len(self.builder):
            return
        builder, self.builder = self.builder, packs.PackBuilder()
        self._submit(self._put_pack, builder)

    def _put_pack(self, builder: packs.PackBuilder) -> None:
        pack_id, parts, entries = builder.finish_parts()
        size = sum(map(len, parts))
        self.repo.put_stream(data_name(pack_id), Parts(parts))
        self.packs[pack_id] = {"size": size, "blobs": entries}
        self.step(size)

    def add_large(self, blob: str, path: str | Path, size: int) -> None:
        pack_id, tail = packs.single_tail(blob, size)
        self.bytes_new += size
        self._submit(self._put_large, pack_id, path, tail, [[blob, 0, size]], size + len(tail))

    def _put_large(self, pack_id: str, path: str | Path, tail: bytes, entries: list, size: int) -> None:
        with open_regular(path) as f:
            self.repo.put_stream(data_name(pack_id), io.BufferedReader(Chain(f, tail), 1 << 20))
        self.packs[pack_id] = {"size": size, "blobs": entries}
        self.step(size)

    def finish(self) -> None:
        try:
            self.flush()
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def hashed(files: Sequence[tuple[str | Path, int] | None]) -> Generator[tuple[str, bytes | None] | None, None, None]:
    """``hash_file`` of each (path, size) (``None`` passes through), in order, a few files read ahead on threads."""
    with ThreadPoolExecutor(HASHERS) as pool:
        ahead: deque[Future | None] = deque()
        it = iter(files)
        try:
            for file in it:
                ahead.append(pool.submit(hash_file, *file) if file is not None else None)
                if len(ahead) >= READ_AHEAD:
                    f = ahead.popleft()
                    yield f.result() if f is not None else None
            while ahead:
                f = ahead.popleft()
                yield f.result() if f is not None else None
        finally:
            for f in ahead:
                if f is not None:
                    f.cancel()


def _share(task: list[tuple[str | Path, int]]) -> tuple[list[str], dict[str, dict[str, Any]], int]:
    """In a worker process: each file of a share read, hashed and packed into packs of the worker's
    own, put to the target; (the files' blob ids in order, the packs put, the new bytes)."""
    repo, known = forked.inherited()
    up = Uploader(repo, lambda n: None, known)
    blobs = []
    try:
        for path, size in task:
            blob, data = hash_file(path, size)
            blobs.append(blob)
            up.add(blob, path, size, data)
    finally:
        up.finish()
    return blobs, up.packs, up.bytes_new


class Workers:
    """The pass on forked worker processes: each share of the files goes to a worker, which reads,
    hashes, packs and puts it as one thread of a pass would, with no interpreter lock to share.

    Two workers may pack the same new bytes (two files alike in different shares): the index lists
    the blob under both packs, a reader takes either, and the copy costs its space (``backup prune``
    deletes a pack only once every blob in it is indexed elsewhere).
    """

    def __init__(self, pool: forked.Forked, shares: list[list[tuple[str | Path, int]]]) -> None:
        self.pool, self.shares = pool, shares
        self.packs: dict[str, dict[str, Any]] = {}
        self.bytes_new = 0

    @classmethod
    def start(cls, repo: Repo, known: Container[str], files: list[tuple[str | Path, int]]) -> Workers | None:
        """Workers for ``files`` (path, size), or None where threads will do: fewer than
        ``FORK_BYTES`` to read, a target that does not say it may be used from a forked process
        (``fork_safe``: docs/PLUGINS.md), the crash seam armed, or no worker to be had
        (``forked.Forked.start``). Call before any other thread starts."""
        total = sum(size for _, size in files)
        if total < FORK_BYTES or getattr(repo.target, "fork_safe", False) is not True or seam.armed():
            return None
        per = min(max(total // (4 * forked.WORKERS), SHARE_BYTES), SHARE_MAX)
        shares: list[list[tuple[str | Path, int]]] = [[]]
        filled = 0
        for path, size in files:
            if filled >= per:
                shares.append([])
                filled = 0
            shares[-1].append((path, size))
            filled += size
        pool = forked.Forked.start(_share, shares, (repo, known), workers=forked.WORKERS, chunk=1, what="vault backup run")
        return None if pool is None else cls(pool, shares)

    def blobs(self, step: Callable[[int], None]) -> Iterator[str]:
        """The blob id of each file, in order, as the workers finish their shares."""
        for share in self.shares:
            blobs, put, new = self.pool.next()
            self.packs.update(put)
            self.bytes_new += new
            step(sum(size for _, size in share))
            yield from blobs

    def shutdown(self) -> None:
        """Stop the workers once their shares in flight are done."""
        self.pool.shutdown()
