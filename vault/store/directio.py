"""Writing a large new file around the page cache: O_DIRECT from an aligned, reused staging buffer."""

from __future__ import annotations

import errno
import os
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import mmap

_O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux and some BSDs; not macOS or Windows
# O_DIRECT wants the buffer's address, the length and the file offset aligned to the device's
# logical block; 4 KiB covers the disks in use, and a refusal falls back to the page cache.
_ALIGN = 4096
STAGE = 4 << 20
"""Bytes gathered before a direct write; a file shorter than this is written the ordinary way."""

# Staging buffers are kept for reuse: a bulk add writes thousands of files in one process, and a
# fresh 4 MiB mapping per file would cost more than writing a small one.
_FREE: list[mmap.mmap] = []
_FREE_LOCK = threading.Lock()
_KEEP = 2


def _take() -> mmap.mmap:
    with _FREE_LOCK:
        if _FREE:
            return _FREE.pop()
    import mmap  # only once a process writes its first file through here

    # Anonymous mappings are page-aligned, as O_DIRECT needs. Private, not mmap's default shared:
    # a buffer kept here must not be shared with the processes this one forks.
    return mmap.mmap(-1, STAGE, flags=mmap.MAP_PRIVATE)


def _give(buf: mmap.mmap) -> None:
    with _FREE_LOCK:
        if len(_FREE) < _KEEP:
            _FREE.append(buf)
            return
    buf.close()


class DirectWriter:
    """A write-only wrapper for a new, empty file that writes it with O_DIRECT, a stage at a time.

    Written through the page cache, a large document is copied into freshly allocated pages, which
    the kernel then writes back; on a virtual machine that copy costs more CPU than encrypting the
    data (the host faults every new guest page in). Here the bytes are gathered in an aligned buffer
    and each full ``STAGE`` goes from it to the disk. What is left at the end, shorter than a stage,
    is written the ordinary way, so a small file is one plain write. Where O_DIRECT is missing or
    refused (tmpfs, some file systems, other platforms), everything goes to ``inner`` instead.

    Durability stays the caller's: a direct write does not flush the disk's cache nor record the
    file's size, so the fsync that follows (``sync_files``) is still what makes the file durable.
    Use it as a context manager inside the file's own block; on an error the tail is not written.
    """

    def __init__(self, f: BinaryIO, inner: Any) -> None:  # inner: a writer for the same file (f or a wrapper)
        self._f = f
        self._inner = inner
        self._stage: memoryview | None = None
        self._map: mmap.mmap | None = None
        self._used = 0
        # None until the first full stage: then on, or off for good (at once where there is no O_DIRECT).
        self._direct: bool | None = None if _O_DIRECT else False
        self._flags = 0

    def write(self, b: bytes | bytearray | memoryview) -> int:
        view = memoryview(b).cast("B")
        n = len(view)
        if self._direct is False:
            _write_all(self._inner, view)
            return n
        while len(view):
            if self._stage is None:
                self._map = _take()
                self._stage = memoryview(self._map)
            k = min(len(view), STAGE - self._used)
            self._stage[self._used : self._used + k] = view[:k]
            self._used += k
            view = view[k:]
            if self._used == STAGE:
                self._spill()
        return n

    def _spill(self) -> None:
        assert self._stage is not None
        data = self._stage[: self._used]
        self._used = 0
        if self._direct is None:
            self._direct = self._start_direct()
        if not self._direct:
            _write_all(self._inner, data)
            return
        fd = self._f.fileno()
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, data[done:])
                if done % _ALIGN:
                    break  # a short write left the offset unaligned: the rest goes the ordinary way
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
        if done < len(data):  # refused (EINVAL: this device wants another alignment) or short
            self._stop_direct()
            self._direct = False
            _write_plain(fd, data[done:])

    def _start_direct(self) -> bool:
        import fcntl

        self._f.flush()  # from here on the file descriptor is written directly, never through f
        fd = self._f.fileno()
        if os.lseek(fd, 0, os.SEEK_CUR) % _ALIGN:
            return False
        try:
            self._flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, self._flags | _O_DIRECT)
        except OSError:
            return False  # the file system does not do direct I/O
        return True

    def _stop_direct(self) -> None:
        import fcntl

        fcntl.fcntl(self._f.fileno(), fcntl.F_SETFL, self._flags)

    def close(self, *, write_tail: bool = True) -> None:
        """Write what is left (through the page cache) and hand the staging buffer back."""
        if self._stage is None:
            return
        try:
            if write_tail and self._used:
                tail = self._stage[: self._used]
                if self._direct:
                    self._stop_direct()
                    self._direct = False
                    _write_plain(self._f.fileno(), tail)
                else:
                    _write_all(self._inner, tail)
        finally:
            if self._direct:
                self._stop_direct()
            self._stage.release()
            self._stage = None
            assert self._map is not None
            _give(self._map)
            self._map = None

    def flush(self) -> None:
        if not self._direct:
            self._inner.flush()

    def __enter__(self) -> "DirectWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(write_tail=exc_type is None)


def _write_all(dst: Any, data: memoryview) -> None:
    while len(data):
        n = dst.write(data)
        if n is None or n >= len(data):
            return
        data = data[n:]


def _write_plain(fd: int, data: memoryview) -> None:
    while len(data):
        data = data[os.write(fd, data) :]
