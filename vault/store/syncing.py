"""Durability in bulk: one syncfs per batch of files, and early write-back of large files."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

from vault.store import fsync_dir, seam


# From this many files on, one syncfs(2) per file system replaces an fsync per file and per directory;
# for one or two files the fsyncs touch less than a write-back of the whole file system.
SYNCFS_MIN_FILES = 4


def sync_files(paths: list[Path], *, top: Path | None = None) -> None:
    """Make many files and their directory entries durable: one syncfs per file system on Linux for a
    batch, else an fsync of each file and then of each directory once — with ``top`` (a tree made
    anew, as a restore makes one), of each directory from theirs up to ``top``, whose own entries
    name the directories made below it."""
    # The crash seam hears of what is made durable as precisely as it is: one "sync" for a syncfs,
    # which writes back the whole file system, else an "fsync" of each file and each directory.
    if len(paths) >= SYNCFS_MIN_FILES and (places := _syncfs_places({p.parent for p in paths})) is not None:
        seam.step("sync", paths[0])
        _syncfs_at(places)
        return
    dirs = set()
    for p in paths:
        seam.step("fsync", p)
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        d = p.parent
        dirs.add(d)
        while top is not None and d != top and top in d.parents and d.parent not in dirs:
            d = d.parent
            dirs.add(d)
    for d in dirs:
        fsync_dir(d)


def sync_dirs(dirs: set[Path] | list[Path]) -> None:
    """Make renames and unlinks in ``dirs`` durable: an fsync of each, or for many directories one
    syncfs per file system (the same bound as ``sync_files``)."""
    dirs = set(dirs)
    if len(dirs) >= SYNCFS_MIN_FILES and (places := _syncfs_places(dirs)) is not None:
        seam.step("sync", min(dirs))  # (else each fsync_dir below is its own step)
        _syncfs_at(places)
        return
    for d in dirs:
        fsync_dir(d)


def _syncfs_places(dirs: set[Path]) -> list[Path] | None:
    """One of ``dirs`` on each file system holding them, for ``_syncfs_at``; None where syncfs cannot
    stand for their fsyncs (no syncfs, or a file system not known to be local: ``LOCAL_TYPES``)."""
    if _syncfs() is None:
        return None
    one_dir_per_fs: dict[int, Path] = {}
    for d in dirs:
        one_dir_per_fs.setdefault(os.stat(d).st_dev, d)
    return list(one_dir_per_fs.values()) if all(_local(dev) for dev in one_dir_per_fs) else None


def _syncfs_at(places: list[Path]) -> None:
    """syncfs(2) once for each file system, by a directory on it (``_syncfs_places``).

    syncfs writes back everything dirty on that file system, ours included, data and metadata: it is
    wider than our files but far narrower than sync(2), and one call instead of thousands.
    """
    for d in places:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            syncfs(fd, d)
        finally:
            os.close(fd)


def can_syncfs(fd: int) -> bool:
    """Whether one ``syncfs`` of the open file or directory ``fd`` makes what was written on its file
    system durable: there is a syncfs (Linux) and the file system is local (``LOCAL_TYPES``)."""
    return _syncfs() is not None and _local(os.fstat(fd).st_dev)


def syncfs(fd: int, what: os.PathLike[str] | str) -> None:
    """syncfs(2) of the file system of the open ``fd`` (``can_syncfs`` said it can); ``what`` names it
    in an error."""
    if _syncfs()(fd) != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}", str(what))


#: File systems whose syncfs(2) writes back everything of theirs that is dirty, to their own disk.
#: On a network or FUSE mount (sshfs, SMB, NFS: a backup target may be one) syncfs may send nothing
#: to the server where fsync would: there each file is fsynced.
LOCAL_TYPES = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "bcachefs", "tmpfs"})
_MOUNT_TYPES: dict[str, str] = {}


def _local(dev: int) -> bool:
    """Whether the file system of device ``dev`` is one of ``LOCAL_TYPES`` (by /proc/self/mountinfo;
    unknown, or no /proc: not)."""
    if not _MOUNT_TYPES:
        _MOUNT_TYPES["-"] = "-"  # (read once)
        for line in _mount_table().splitlines():
            fields, _, rest = line.partition(" - ")
            parts = fields.split()
            if len(parts) >= 3 and rest:
                _MOUNT_TYPES.setdefault(parts[2], rest.split()[0])
    return _MOUNT_TYPES.get(f"{os.major(dev)}:{os.minor(dev)}") in LOCAL_TYPES


def _mount_table() -> str:
    """/proc/self/mountinfo ("" without it): "id parent major:minor root mountpoint options … - type source …"."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


_SYNCFS: list = []
_LIBC: dict[str, object] = {}


def _libc_func(name: str) -> Any:
    """A Linux libc function by name (``syncfs``, ``sync_file_range``), or None (not Linux, or a libc
    without it). ctypes is loaded only for a batch or a large file: a small command never loads it."""
    if name not in _LIBC:
        func = None
        if sys.platform.startswith("linux"):
            import ctypes

            try:
                func = getattr(ctypes.CDLL(None, use_errno=True), name)
                if name == "syncfs":
                    func.argtypes = [ctypes.c_int]
                else:
                    func.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
                func.restype = ctypes.c_int
            except (OSError, AttributeError):
                func = None
        _LIBC[name] = func
    return _LIBC[name]


def _syncfs() -> Any:
    """libc's syncfs, or None (not Linux, or a libc without it)."""
    if not _SYNCFS:
        _SYNCFS.append(_libc_func("syncfs"))
    return _SYNCFS[0]


# Write-back of a large file is started every this many bytes, so that its final fsync waits only for
# the tail instead of the whole file: the disk works while the rest is still being encrypted.
WRITEBACK_WINDOW = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2


class WritebackWriter:
    """A write-only wrapper that starts the kernel's write-back of each ``WRITEBACK_WINDOW`` written.

    ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` only starts writing pages out; it promises nothing
    about durability — the caller's fsync (``sync_files``) still does that — but that fsync then
    finds little left to write. The calls are made on a helper thread, since submitting the I/O can
    block on a busy disk and the writer must not stall with it. Use it as a context manager inside
    the file's own block: leaving it waits for the helper, before the file is closed. Where there is
    no ``sync_file_range`` it is a plain pass-through.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self._written = 0
        self._started = 0
        self._func = _libc_func("sync_file_range")
        self._queue: Any = None
        self._thread: Any = None

    def write(self, b: bytes | bytearray | memoryview) -> int | None:
        n = self.f.write(b)
        self._written += len(b) if n is None else n
        if self._func is not None and self._written - self._started >= WRITEBACK_WINDOW:
            self.f.flush()
            self._submit(self._started, self._written - self._started)
            self._started = self._written
        return n

    def _submit(self, offset: int, length: int) -> None:
        if self._thread is None:  # only a large file gets a helper thread
            import queue
            import threading

            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._run, args=(self.f.fileno(),), name="vault-writeback",
                                            daemon=True)
            self._thread.start()
        self._queue.put((offset, length))

    def _run(self, fd: int) -> None:
        while (item := self._queue.get()) is not None:
            # Best effort: a failure here is seen again, and reported, by the fsync that follows.
            self._func(fd, item[0], item[1], _SYNC_FILE_RANGE_WRITE)

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "WritebackWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
