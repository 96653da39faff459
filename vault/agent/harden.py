"""What the agent does to its own process before it holds a secret: no core dumps, no ptrace, same uid only."""

from __future__ import annotations

import os
import resource
import socket
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ctypes

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _libc() -> ctypes.CDLL | None:
    import ctypes  # here: clients import this module for same_user() and need no ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)  # the process's own symbols, libc's among them
    except OSError:
        return None


def no_core_dumps() -> None:
    """RLIMIT_CORE 0 (no core file on a crash) and, on Linux, not dumpable.

    Not dumpable also means other processes of the same user (not root) can neither ptrace the
    agent nor read its memory through /proc/<pid>/mem: the identity stays in this process.
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = _libc()
    if libc is not None and hasattr(libc, "prctl"):
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            import ctypes

            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def dumpable() -> bool | None:
    """Whether this process is dumpable (None where prctl does not exist)."""
    libc = _libc()
    if libc is None or not hasattr(libc, "prctl"):
        return None
    return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket, from the kernel.

    SO_PEERCRED (Linux) is taken at connect() time and cannot be forged by the peer; elsewhere
    ``getpeereid`` is not reachable from Python's standard library and None is returned.
    """
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def same_user(sock: socket.socket) -> bool:
    """True only when the peer's uid is known and equal to ours."""
    uid = peer_uid(sock)
    return uid is not None and uid == os.getuid()
