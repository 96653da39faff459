"""`backup restore` streams blob by blob: memory does not grow with a document's size, each blob is
checked against its name before it is put in place, and a damaged or short pack leaves no file."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from backup_helpers import actor, add_docs, office_with_dossiers, tree_digest
from vault import backup
from vault.backup import blobstream, packs
from vault.backup.repo import DATA, Repo
from vault.errors import IntegrityError

BIG = 24 << 20  # well over packs.SMALL_BLOB: a pack of its own


@pytest.fixture
def backed_up(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=1)
    act = actor(o)
    add_docs(o, numbers[0], 1, BIG, tmp_path / "src", seed=1, act=act)
    add_docs(o, numbers[0], 3, 5000, tmp_path / "src", seed=2, act=act)
    url = f"file://{tmp_path / 'target'}"
    o.run("backup", "run", url)
    return o, url, act


def big_packs(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "target" / "data").rglob("*") if p.is_file() and p.stat().st_size > BIG]


def test_restore_memory_does_not_grow_with_the_document(backed_up, tmp_path):
    o, url, act = backed_up
    ids = act.read_identities()
    tracemalloc.start()
    try:
        backup.restore(url, "latest", tmp_path / "r", ids)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"restore held {peak >> 20} MiB for a {BIG >> 20} MiB document"
    mine = tree_digest(tmp_path / "r")
    theirs = tree_digest(o.vault_dir)
    assert {k: v for k, v in theirs.items() if k in mine} == mine  # what was restored is byte-identical
    assert any(k.startswith("dossiers/") and k.endswith(".age") for k in mine)


def test_a_damaged_blob_is_named_and_leaves_no_file(backed_up, tmp_path):
    _, url, act = backed_up
    (pack,) = big_packs(tmp_path)
    raw = bytearray(pack.read_bytes())
    raw[BIG // 2] ^= 1
    pack.write_bytes(bytes(raw))
    dest = tmp_path / "r"
    with pytest.raises(IntegrityError, match=r"blob [0-9a-f]{16} in data/.* is damaged"):
        backup.restore(url, "latest", dest, act.read_identities(), member=act.identity)
    sizes = [p.stat().st_size for p in dest.rglob("*") if p.is_file()]
    assert all(s < BIG for s in sizes)  # neither the damaged document nor a temporary copy of it


def test_a_short_pack_is_named(backed_up, tmp_path):
    _, url, act = backed_up
    (pack,) = big_packs(tmp_path)
    pack.write_bytes(pack.read_bytes()[: BIG // 3])
    with pytest.raises(IntegrityError, match="cut short"):
        backup.restore(url, "latest", tmp_path / "r", act.read_identities(), member=act.identity)


class _Unseekable(io.RawIOBase):
    """A stream that can only be read forward, like an HTTP body."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self._f.read(min(len(b), 4096))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_blobs_come_out_of_a_forward_only_stream(tmp_path):
    """Several blobs of one pack, some wanted at two paths, some not wanted at all."""
    blobs = [bytes([i]) * (1000 + i) for i in range(6)]
    ids = [packs.sha256_hex(b) for b in blobs]
    builder = packs.PackBuilder()
    for i, b in zip(ids, blobs):
        builder.add(i, b)
    pack_id, data, entries = builder.finish()

    class OneObject:
        url = "test://"

        def open(self, name):
            assert name == f"{DATA}{pack_id[:2]}/{pack_id}" or name.endswith(pack_id)
            return io.BufferedReader(_Unseekable(data))

    index = {b: (pack_id, off, ln) for b, off, ln in entries}
    wanted = {ids[1]: [["a/one", ids[1], 1001, 0o600]], ids[4]: [["b/four", ids[4], 1004, 0o600],
                                                               ["c/four-again", ids[4], 1004, 0o644]]}
    written = blobstream.restore_blobs(OneObject(), index, wanted, tmp_path)  # type: ignore[arg-type]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == ["a/one", "b/four", "c/four-again"]
    assert (tmp_path / "a/one").read_bytes() == blobs[1] and (tmp_path / "c/four-again").read_bytes() == blobs[4]
    assert (tmp_path / "c/four-again").stat().st_mode & 0o777 == 0o644
    with pytest.raises(IntegrityError, match="is in no pack"):
        blobstream.restore_blobs(OneObject(), index, {"f" * 64: [["x", "f" * 64, 1, 0o600]]}, tmp_path / "z")  # type: ignore[arg-type]


def test_repo_open_is_the_target_stream(tmp_path):
    url = f"file://{tmp_path / 't'}"
    repo = Repo(url, cache=tmp_path / "c")
    repo.put("data/ab/abc", b"hello")
    with repo.open("data/ab/abc") as f:
        assert f.read() == b"hello"
