"""Advisory locks: the vault's ``.lock`` (exclusive for writers, shared for readers) and other lock files."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from vault.errors import LockError
from vault.i18n import Message, N_


def open_lock(path: Path, *, exclusive: bool, wait: float, what: str) -> int | None:
    """Open and ``flock`` the lock file ``path``; return its descriptor (None: nothing to lock).

    A shared lock works on a vault the caller may only read (a read-only mount, another user's
    files): the lock file is opened read-only, and if it does not exist and cannot be created, no
    writer has ever locked that vault and there is nothing to wait for. A lock not had within
    ``wait`` seconds ends in a LockError, never in waiting for ever.
    """
    import time

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        if exclusive or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, op)
            return fd
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                os.close(fd)
                raise LockError(N_("{what} is locked by another command (waited {wait:g} s)"), what=what, wait=wait) from None
            time.sleep(0.02)


def close_lock(fd: int | None) -> None:
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class VaultLock:
    """An advisory ``flock`` on ``<vault>/.lock``: exclusive for writers, shared for readers.

    Readers that need a consistent view (``check``, backups) take it shared so that no writer
    changes the vault under them; writers take it exclusive. ``wait`` seconds bound how long a
    command waits for another before it gives up with a LockError.
    """

    def __init__(self, root: Path, *, exclusive: bool, wait: float = 30.0) -> None:
        self.path = root / ".lock"
        self.exclusive = exclusive
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> "VaultLock":
        self._fd = open_lock(self.path, exclusive=self.exclusive, wait=self.wait, what=Message(N_("the vault")))
        return self

    def __exit__(self, *exc: object) -> None:
        close_lock(self._fd)
        self._fd = None
