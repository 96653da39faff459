"""Writing a large new file around the page cache: O_DIRECT from an aligned, reused staging buffer."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

from vault.crypto.pipeline import write_all  # (raw files may write less than asked)

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
_KEEP = 2  # the two a large file fills and writes in turn


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
    with contextlib.suppress(BufferError):  # a view of it still alive: the garbage collector closes it
        buf.close()


class _Stage:
    """A staging buffer: the page-aligned mapping and a view of it."""

    __slots__ = ("map", "view")

    def __init__(self) -> None:
        self.map = _take()
        self.view = memoryview(self.map)

    def give_back(self) -> None:
        self.view.release()
        _give(self.map)


class _Behind:
    """The thread that writes full stages while the next one fills: the disk's time then overlaps
    the caller's (hashing, encrypting) instead of following it."""

    def __init__(self, fd: int) -> None:
        import queue

        self._fd = fd
        self._todo: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[int | BaseException] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="vault-direct-write", daemon=True)
        self._thread.start()

    def submit(self, data: memoryview) -> None:
        self._todo.put(data)

    def wait(self) -> int:
        """The bytes the submitted write wrote (fewer if refused or short); its error, raised."""
        result = self._done.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        self._todo.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (data := self._todo.get()) is not None:
            try:
                self._done.put(_write_direct(self._fd, data))
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
                self._done.put(e)


class DirectWriter:
    """A write-only wrapper for a new, empty file that writes it with O_DIRECT, a stage at a time.

    Written through the page cache, a large document is copied into freshly allocated pages, which
    the kernel then writes back; on a virtual machine that copy costs more CPU than encrypting the
    data (the host faults every new guest page in). Here the bytes are gathered in an aligned buffer
    and each full ``STAGE`` goes from it to the disk, on a helper thread while the next one fills.
    What is left at the end, shorter than a stage, is written the ordinary way, so a small file is
    one plain write. Where O_DIRECT is missing or refused (tmpfs, some file systems, other
    platforms), everything goes to ``inner`` instead.

    Durability stays the caller's: a direct write does not flush the disk's cache nor record the
    file's size, so the fsync that follows (``sync_files``) is still what makes the file durable.
    Use it as a context manager inside the file's own block; on an error the tail is not written.
    """

    def __init__(self, f: BinaryIO, inner: Any) -> None:  # inner: a writer for the same file (f or a wrapper)
        self._f = f
        self._inner = inner
        self._stage: _Stage | None = None  # the one filling
        self._used = 0
        self._spare: _Stage | None = None  # the one last written, free again
        self._in_flight: tuple[_Stage, int] | None = None  # the one being written, and how much of it
        self._behind: _Behind | None = None
        # None until the first full stage: then on, or off for good (at once where there is no O_DIRECT).
        self._direct: bool | None = None if _O_DIRECT else False
        self._flags = 0

    def write(self, b: bytes | bytearray | memoryview) -> int:
        view = memoryview(b).cast("B")
        n = len(view)
        if self._direct is False:
            write_all(self._inner, view)
            return n
        while len(view):
            if self._stage is None:
                self._stage = _Stage()
            k = min(len(view), STAGE - self._used)
            self._stage.view[self._used : self._used + k] = view[:k]
            self._used += k
            view = view[k:]
            if self._used == STAGE:
                self._spill()
        return n

    def _spill(self) -> None:
        stage, n = self._stage, self._used
        assert stage is not None
        self._used = 0
        self._settle()  # one write in flight at a time, and a refused one finished before this one
        if self._direct is None:
            self._direct = self._start_direct()
        if not self._direct:
            write_all(self._inner, stage.view[:n])
            return
        if self._behind is None:
            self._behind = _Behind(self._f.fileno())
        self._behind.submit(stage.view[:n])
        self._in_flight = (stage, n)
        self._stage, self._spare = self._spare, None

    def _settle(self) -> None:
        """Wait for the write in flight; what the disk refused of it goes through the page cache."""
        if self._in_flight is None:
            return
        stage, n = self._in_flight
        assert self._behind is not None
        try:
            done = self._behind.wait()
        finally:
            self._in_flight = None
            self._spare = stage  # reused only now: the disk may read a buffer until its write returns
        if done < n:  # refused (EINVAL: this device wants another alignment) or short
            self._stop_direct()
            self._direct = False
            _write_plain(self._f.fileno(), stage.view[done:n])

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
        """Finish the write in flight, write what is left (through the page cache), hand the buffers back."""
        try:
            if write_tail:
                self._settle()
            else:  # leaving on an error: wait all the same, the disk may still be reading the buffer
                with contextlib.suppress(BaseException):
                    self._settle()
            if write_tail and self._used:
                assert self._stage is not None
                tail = self._stage.view[: self._used]
                if self._direct:
                    self._stop_direct()
                    self._direct = False
                    _write_plain(self._f.fileno(), tail)
                else:
                    write_all(self._inner, tail)
        finally:
            if self._behind is not None:
                self._behind.stop()
                self._behind = None
            if self._direct:
                self._stop_direct()
                self._direct = False
            for stage in (self._stage, self._spare):
                if stage is not None:
                    stage.give_back()
            self._stage = self._spare = None
            self._used = 0

    def flush(self) -> None:
        if not self._direct:
            self._inner.flush()

    def __enter__(self) -> "DirectWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(write_tail=exc_type is None)


def _write_direct(fd: int, data: memoryview) -> int:
    """Write data with the descriptor's O_DIRECT; the bytes written, fewer if refused or cut short."""
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, data[done:])
            if done % _ALIGN:
                break  # a short write left the offset unaligned: the rest goes the ordinary way
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
    return done


def _write_plain(fd: int, data: memoryview) -> None:
    while len(data):
        data = data[os.write(fd, data) :]
