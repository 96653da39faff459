"""A large document is written with direct I/O, a small one through the page cache; the bytes are the same."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import threading

import pytest

from vault.archive.manifests import load_manifest, resolve
from vault.office import documents
from vault.store import directio
from vault.store.directio import STAGE, DirectWriter

O_DIRECT = getattr(os, "O_DIRECT", 0)


def _supports_direct(d) -> bool:
    """Whether the file system under d takes O_DIRECT (tmpfs before Linux 6.6 does not)."""
    if not O_DIRECT:
        return False
    try:
        fd = os.open(d / "probe", os.O_WRONLY | os.O_CREAT | O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    os.unlink(d / "probe")
    return True


class Recorder:
    """The ordinary writer under DirectWriter (the file itself), counting what reaches it."""

    def __init__(self, f):
        self.f, self.writes = f, []

    def write(self, b):
        self.writes.append(len(b))
        return self.f.write(b)

    def flush(self):
        self.f.flush()


def _write(path, data: bytes, piece: int, seen: list[int] | None = None) -> Recorder:
    with open(path, "wb") as f:
        inner = Recorder(f)
        with DirectWriter(f, inner) as w:
            for i in range(0, len(data), piece):
                assert w.write(data[i : i + piece]) == len(data[i : i + piece])
                if seen is not None:
                    seen.append(fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & O_DIRECT)
        # The descriptor is left as it was found: the file's own close and fsync run without O_DIRECT.
        assert not fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & O_DIRECT
    return inner


def test_a_large_file_goes_to_the_disk_directly_and_its_bytes_are_unchanged(tmp_path):
    data = os.urandom(2 * STAGE + 3 * 65552 + 123)  # odd pieces: stages are cut across writes
    seen: list[int] = []
    inner = _write(tmp_path / "big", data, 65552 * 16 + 7, seen)
    assert (tmp_path / "big").read_bytes() == data
    if _supports_direct(tmp_path):
        assert any(seen), "the full stages were not written with O_DIRECT"
        assert inner.writes == []  # nor through the page cache: only the tail, written on the descriptor
    else:
        assert sum(inner.writes) == len(data)


def test_a_small_file_is_one_ordinary_write(tmp_path):
    data = os.urandom(STAGE - 1)
    seen: list[int] = []
    inner = _write(tmp_path / "small", data, 4096, seen)
    assert (tmp_path / "small").read_bytes() == data
    assert inner.writes == [len(data)] and not any(seen)


def test_an_empty_file_stays_empty(tmp_path):
    inner = _write(tmp_path / "empty", b"", 1)
    assert (tmp_path / "empty").read_bytes() == b"" and inner.writes == []


def test_a_file_not_at_an_aligned_offset_is_written_the_ordinary_way(tmp_path):
    data = os.urandom(STAGE + 5000)
    with open(tmp_path / "f", "wb") as f:
        f.write(b"prefix")  # direct writes need an aligned offset: this one is not
        inner = Recorder(f)
        with DirectWriter(f, inner) as w:
            w.write(data)
            assert not fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & O_DIRECT
    assert (tmp_path / "f").read_bytes() == b"prefix" + data
    assert sum(inner.writes) == len(data)


def _direct_writes_fail(monkeypatch, code: int) -> None:
    """Every write to a file open with O_DIRECT fails with ``code`` (what the disk here never does)."""
    real = os.write

    def failing(fd, b):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT:
            raise OSError(code, os.strerror(code))
        return real(fd, b)

    monkeypatch.setattr(directio.os, "write", failing)


def test_a_device_that_refuses_direct_writes_gets_the_rest_through_the_page_cache(tmp_path, monkeypatch):
    """EINVAL is how a disk with a larger logical block refuses a 4 KiB-aligned write; it cannot be
    provoked on the test machine's disk, so the refusal is injected."""
    if not _supports_direct(tmp_path):
        pytest.skip("this file system takes no O_DIRECT at all: the fallback is the other tests' path")
    _direct_writes_fail(monkeypatch, errno.EINVAL)
    data = os.urandom(3 * STAGE + 1)
    _write(tmp_path / "f", data, 1 << 20)
    assert (tmp_path / "f").read_bytes() == data


def test_a_failed_write_leaves_no_tail_and_the_staging_buffer_is_reused(tmp_path):
    with open(tmp_path / "f", "wb") as f:
        with pytest.raises(RuntimeError), DirectWriter(f, f) as w:
            w.write(os.urandom(STAGE + 10))
            raise RuntimeError("the source failed")
    assert os.path.getsize(tmp_path / "f") in (0, STAGE)  # never the tail after the failure
    assert directio._FREE  # the buffer went back for the next file


def test_doc_add_of_a_large_document_round_trips_and_its_hash_is_the_files(office, tmp_path):
    """The manifest's hash (what check verifies with no key) is that of the bytes on disk."""
    number = office.create(name="Large Scan Customer")
    src = tmp_path / "scan.bin"
    data = os.urandom(2 * STAGE + 777)
    src.write_bytes(data)
    actor = office.actor()
    docno = documents.add(actor, number, [src], category="contract", source="desk", date="2026-01-01",
                          original=True)[0]
    out = io.BytesIO()
    documents.view(actor, docno, out)
    assert out.getvalue() == data
    m = load_manifest(actor.vault, resolve(actor.vault, number))
    entry = next(d for d in m.documents if d.number == docno)
    path = actor.vault.layout.document(m.id, entry.id)
    blob = path.read_bytes()
    assert entry.sha256 == hashlib.sha256(blob).hexdigest() and entry.size == len(blob)
    assert office.json("check", "--read-data", who="bob")["ok"]


def test_a_kept_staging_buffer_is_not_shared_with_a_forked_process(tmp_path):
    """A process that forks workers (the crash tests do; so may a server) hands each its own copy."""
    _write(tmp_path / "warm", b"x", 1)  # leaves a staging buffer kept for reuse
    assert directio._FREE
    mine, theirs = os.urandom(1 << 20), os.urandom(1 << 20)
    staged_r, staged_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child stages its bytes, waits for the parent to stage its own, then writes
        code = 1
        try:
            with open(tmp_path / "child", "wb") as f, DirectWriter(f, f) as w:
                w.write(theirs)
                os.write(staged_w, b"1")
                os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.read(staged_r, 1)
    with open(tmp_path / "parent", "wb") as f, DirectWriter(f, f) as w:
        w.write(mine)
    os.write(done_w, b"1")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    for fd in (staged_r, staged_w, done_r, done_w):
        os.close(fd)
    assert (tmp_path / "parent").read_bytes() == mine and (tmp_path / "child").read_bytes() == theirs


def test_where_there_is_no_o_direct_every_write_passes_straight_through(tmp_path, monkeypatch):
    """macOS and Windows have no O_DIRECT: no staging copy, the writes reach the file as they come."""
    monkeypatch.setattr(directio, "_O_DIRECT", 0)
    data = os.urandom(STAGE + 3000)
    inner = _write(tmp_path / "f", data, 1 << 20)
    assert (tmp_path / "f").read_bytes() == data
    assert inner.writes == [1 << 20] * 4 + [len(data) - 4 * (1 << 20)]


def test_a_disk_error_in_a_direct_write_reaches_the_caller_and_leaves_no_thread(tmp_path, monkeypatch):
    """The stages are written on a helper thread; its failure (here a full disk) is raised in the
    caller's, and the helper is gone after, failure or not."""
    if not _supports_direct(tmp_path):
        pytest.skip("no O_DIRECT here: no helper thread either")
    _direct_writes_fail(monkeypatch, errno.ENOSPC)
    with pytest.raises(OSError) as e:
        _write(tmp_path / "f", os.urandom(3 * STAGE), 1 << 20)
    assert e.value.errno == errno.ENOSPC
    assert not [t for t in threading.enumerate() if t.name == "vault-direct-write"]
