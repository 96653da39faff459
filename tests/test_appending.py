"""Appending whole or not at all: the history's log and the staging journal share one append [R-3.3.1, R-3.4.1]."""

from __future__ import annotations

import errno
import os

import pytest

from vault.store import seam
from vault.store.appending import append_whole


@pytest.mark.parametrize("step_first", [False, True])
def test_an_append_the_disk_refuses_leaves_the_file_as_it_was(tmp_path, step_first):
    log = tmp_path / "log"
    append_whole(log, b"one\n", step="append", step_first=step_first)
    trace: list = []
    seam.arm(2, full=True, trace=trace)  # the append's own step passes, its fsync finds the disk full
    try:
        with pytest.raises(OSError) as e:
            append_whole(log, b"two, never whole\n", step="append", step_first=step_first, sync_cut=True)
    finally:
        seam.disarm()
    assert e.value.errno == errno.ENOSPC and [k for k, _ in trace] == ["append", "fsync"]
    assert log.read_bytes() == b"one\n"  # the written part was cut off again
    append_whole(log, b"three\n", step="append")
    assert log.read_bytes() == b"one\nthree\n" and (log.stat().st_mode & 0o777) == 0o600


def test_an_append_never_follows_a_symbolic_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    os.symlink(target, tmp_path / "log")
    with pytest.raises(OSError) as e:
        append_whole(tmp_path / "log", b"x\n", step="append")
    assert e.value.errno == errno.ELOOP and target.read_bytes() == b""
