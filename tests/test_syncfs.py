"""A batch of files is made durable with one syncfs per file system (Linux), else file by file."""

from __future__ import annotations

import os
import sys

import pytest

from vault.store import syncing


def _files(d, n):
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = d / f"f{i}"
        p.write_bytes(b"x" * 100)
        out.append(p)
    return out


@pytest.fixture
def counts(monkeypatch):
    c = {"syncfs": 0, "fsync": 0}
    real_fsync = os.fsync
    real = syncing._syncfs()

    def counting_syncfs(fd):
        c["syncfs"] += 1
        return real(fd) if real is not None else 0

    def counting_fsync(fd):
        c["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(syncing, "_SYNCFS", [counting_syncfs])
    monkeypatch.setattr(syncing.os, "fsync", counting_fsync)
    # (whatever the file system under the test's directory: its type decides only in ``_local``)
    monkeypatch.setattr(syncing, "_local", lambda dev: True)
    return c


def test_syncfs_is_taken_only_for_a_local_file_system_by_the_mount_table(tmp_path, monkeypatch):
    """On a network or FUSE mount syncfs may send nothing to the server: there each file is fsynced.
    The type comes from the mount table line whose major:minor is the directory's device."""
    dev = os.stat(tmp_path).st_dev
    here = f"{os.major(dev)}:{os.minor(dev)}"
    for fstype, local in (("ext4", True), ("xfs", True), ("fuse.sshfs", False), ("nfs4", False), ("cifs", False)):
        table = (f"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
                 f"36 1 {here} / /data rw,relatime shared:1 - {fstype} /dev/x rw\n")
        monkeypatch.setattr(syncing, "_MOUNT_TYPES", {})
        monkeypatch.setattr(syncing, "_mount_table", lambda table=table: table)
        assert syncing._local(dev) is local, fstype
        calls = []
        monkeypatch.setattr(syncing, "_SYNCFS", [lambda fd, calls=calls: calls.append(fd) or 0])
        files = [tmp_path / f"{fstype}-{i}" for i in range(5)]
        for f in files:
            f.write_bytes(b"x")
        syncing.sync_files(files)
        assert bool(calls) is local, fstype


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_the_real_syncfs_is_found_and_works(tmp_path):
    assert syncing._syncfs() is not None
    syncing.sync_files(_files(tmp_path / "a", syncing.SYNCFS_MIN_FILES))


def test_a_batch_is_one_syncfs_per_file_system(tmp_path, counts):
    syncing.sync_files(_files(tmp_path / "a", 20) + _files(tmp_path / "b", 20))
    assert counts == {"syncfs": 1, "fsync": 0}  # two directories, one file system


def test_a_few_files_are_fsynced_one_by_one(tmp_path, counts):
    syncing.sync_files(_files(tmp_path / "a", 3))
    assert counts == {"syncfs": 0, "fsync": 3 + 1}  # the files, then their directory (3 < SYNCFS_MIN_FILES)


def test_without_syncfs_every_file_is_fsynced(tmp_path, counts, monkeypatch):
    monkeypatch.setattr(syncing, "_SYNCFS", [None])
    syncing.sync_files(_files(tmp_path / "a", 20))
    assert counts == {"syncfs": 0, "fsync": 20 + 1}


def test_a_failing_syncfs_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(syncing, "_SYNCFS", [lambda fd: -1])
    with pytest.raises(OSError, match="syncfs"):
        syncing.sync_files(_files(tmp_path / "a", 20))


def test_a_large_write_starts_its_write_back_window_by_window(tmp_path, monkeypatch):
    """The final fsync of a large document then waits for the tail only; the bytes are unchanged."""
    calls = []
    real = syncing._libc_func("sync_file_range")

    def spy(fd, offset, length, flags):
        assert fd == f.fileno()
        calls.append((offset, length, flags))
        return real(fd, offset, length, flags) if real is not None else 0

    data = os.urandom(3 * syncing.WRITEBACK_WINDOW + 12345)
    with open(tmp_path / "big", "wb") as f:
        with syncing.WritebackWriter(f) as w:  # leaving it waits for the helper thread's calls
            w._func = spy
            for i in range(0, len(data), 1 << 20):
                w.write(data[i : i + (1 << 20)])
            w.flush()
    assert (tmp_path / "big").read_bytes() == data
    win = syncing.WRITEBACK_WINDOW
    assert calls == [(0, win, 2), (win, win, 2), (2 * win, win, 2)]  # the tail is left to the fsync


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_real_sync_file_range_is_found():
    assert syncing._libc_func("sync_file_range") is not None
