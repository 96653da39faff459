"""The crash seam: stops the process at the N-th durable step of the store, to test crash consistency.

Every durable step of the store (a file created and written, an fsync or syncfs, a rename, an
unlink, a directory made, an append to the audit log) calls ``step`` first. Unarmed — always, in use
— ``step`` returns at once. A test arms it with ``arm`` (in-process), or a process is started with
``VAULT_TEST_CRASH_AT=N`` (stop just before step N) or ``N+`` (just after it: before step N+1,
which leaves the same files; after the last step the command simply completes); the environment variable is read once, at import, and only when set. The process then
ends with ``os._exit(CRASH_EXIT)``: no cleanup, no ``finally``, no buffered output — what ``kill
-9`` does. With ``VAULT_TEST_FULL_AT=N`` (or ``arm(N, full=True)``) the disk is full from step N
on instead: every later step that allocates space raises ``OSError(ENOSPC)``, as a full disk or a
file size limit would. The seam can do nothing a kill or a full disk cannot, so setting it weakens
nothing.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

CRASH_EXIT = 86
ENV = "VAULT_TEST_CRASH_AT"
ENV_FULL = "VAULT_TEST_FULL_AT"
#: The steps a full disk refuses (removing a file frees space; it never needs any).
ALLOCATING = frozenset({"create", "write", "append", "journal", "fsync", "sync", "rename", "mkdir", "overwrite"})

_armed = False
_at = 0  # stop just before this step (1-based); 0: never
_count = 0
_trace: list[tuple[str, str]] | None = None
_full = False
_lock = threading.Lock()


def arm(at: int = 0, *, after: bool = False, full: bool = False, trace: list[tuple[str, str]] | None = None) -> None:
    """Count steps from now; stop just before step ``at`` (or just after it, ``after``); 0 never stops.
    With ``full``, the disk is full from step ``at`` on instead of the process stopping.

    ``trace``, if given, receives ``(kind, path)`` for every step taken.
    """
    global _armed, _at, _count, _trace, _full
    _armed, _at, _count, _trace, _full = True, at + (1 if after and at else 0), 0, trace, full


def disarm() -> int:
    """Stop counting; return the number of steps taken since ``arm``."""
    global _armed
    _armed = False
    return _count


def armed() -> bool:
    """Whether steps are counted: work that would take them in another process (where the count
    and the stop cannot reach) stays in this one."""
    return _armed


def step(kind: str, path: os.PathLike[str] | str) -> None:
    """Called before every durable step of the store."""
    if _armed:
        _hit(kind, path)


def _hit(kind: str, path: os.PathLike[str] | str) -> None:
    global _count
    with _lock:  # backup targets take steps from several threads
        _count += 1
        n = _count
        if _trace is not None:
            _trace.append((kind, str(Path(path))))
    if _full:
        if _at and n >= _at and kind in ALLOCATING:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    elif n == _at:
        os._exit(CRASH_EXIT)


def _from_env() -> None:
    value, full = os.environ.get(ENV), False
    if value is None:
        value, full = os.environ.get(ENV_FULL), True
    if value is None:
        return
    after = value.endswith("+") and not full
    try:
        n = int(value.rstrip("+"))
    except ValueError:
        return
    if n > 0:
        arm(n, after=after, full=full)


_from_env()
