"""Appending to an append-only file whole or not at all: the history's log and the staging journal."""

from __future__ import annotations

import os
from pathlib import Path

from vault.store import seam


def append_whole(path: Path, data: bytes, *, step: str, step_first: bool = False, sync_cut: bool = False) -> None:
    """Append ``data`` to ``path`` and fsync it, or leave the file as it was.

    The file is created mode 0600 and never opened through a symbolic link (``O_NOFOLLOW``: the
    ``OSError`` is ``ELOOP``, which a caller may name). A short write (a full disk, a file size
    limit) or any interruption is cut off again at the size the file had, so a half line never
    joins the next append. ``step`` is the crash seam's name for the append (``seam.step``): taken
    before the file is opened with ``step_first``, else once it is open, inside the cut. With
    ``sync_cut`` the cut itself is made durable.
    """
    if step_first:
        seam.step(step, path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        start = os.fstat(fd).st_size
        try:
            if not step_first:
                seam.step(step, path)
            done = 0
            while done < len(data):
                done += os.write(fd, data[done:])
            seam.step("fsync", path)
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, start)
            if sync_cut:
                os.fsync(fd)
            raise
    finally:
        os.close(fd)
