"""A batch of files is made durable with one syncfs per file system (Linux), else file by file."""

from __future__ import annotations

import os
import sys

import pytest

from vault import store


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
    real = store._syncfs()

    def counting_syncfs(fd):
        c["syncfs"] += 1
        return real(fd) if real is not None else 0

    def counting_fsync(fd):
        c["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(store, "_SYNCFS", [counting_syncfs])
    monkeypatch.setattr(store.os, "fsync", counting_fsync)
    return c


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_the_real_syncfs_is_found_and_works(tmp_path):
    assert store._syncfs() is not None
    store.sync_files(_files(tmp_path / "a", store.SYNCFS_MIN_FILES))


def test_a_batch_is_one_syncfs_per_file_system(tmp_path, counts):
    store.sync_files(_files(tmp_path / "a", 20) + _files(tmp_path / "b", 20))
    assert counts == {"syncfs": 1, "fsync": 0}  # two directories, one file system


def test_a_few_files_are_fsynced_one_by_one(tmp_path, counts):
    store.sync_files(_files(tmp_path / "a", 3))
    assert counts == {"syncfs": 0, "fsync": 3 + 1}  # the files, then their directory (3 < SYNCFS_MIN_FILES)


def test_without_syncfs_every_file_is_fsynced(tmp_path, counts, monkeypatch):
    monkeypatch.setattr(store, "_SYNCFS", [None])
    store.sync_files(_files(tmp_path / "a", 20))
    assert counts == {"syncfs": 0, "fsync": 20 + 1}


def test_a_failing_syncfs_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_SYNCFS", [lambda fd: -1])
    with pytest.raises(OSError, match="syncfs"):
        store.sync_files(_files(tmp_path / "a", 20))
