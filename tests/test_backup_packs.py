"""Packs named by their header (FORMAT §16.2): every byte still bound to the name, older repositories still read."""

from __future__ import annotations

import hashlib
import json
import random
import struct

import pytest

from backup_helpers import actor, add_docs, office_with_dossiers, tree_digest
from vault import backup
from vault.backup import packs
from vault.backup.repo import DATA, INDEX, Repo, data_name
from vault.errors import IntegrityError
from vault.archive.vault import Vault

BLOBS = [bytes([i]) * (3000 + 7 * i) for i in range(5)]
IDS = [hashlib.sha256(b).hexdigest() for b in BLOBS]


def _pack(fmt: int = 2, *, blobs=BLOBS, ids=IDS, entries=None, between: bytes = b"") -> tuple[str, bytes]:
    """A pack written by hand: blobs, optional bytes before the header, header, trailer; named by the
    rule of its format (2: the header's hash, 1: the hash of every byte)."""
    if entries is None:
        entries, off = [], 0
        for i, b in zip(ids, blobs):
            entries.append([i, off, len(b)])
            off += len(b)
    header = json.dumps({"format": fmt, "blobs": entries}, separators=(",", ":")).encode()
    data = b"".join(blobs) + between + header + struct.pack("<I", len(header))
    return hashlib.sha256(header if fmt == 2 else data).hexdigest(), data


def test_a_new_pack_is_named_by_the_hash_of_its_header_and_reads_back():
    builder = packs.PackBuilder()
    for i, b in zip(IDS, BLOBS):
        builder.add(i, b)
    pack_id, data, entries = builder.finish()
    assert (pack_id, data) == _pack()
    assert packs.read_trailer(pack_id, data) == entries
    assert packs.blobs_of(pack_id, data, entries) == dict(zip(IDS, BLOBS))
    one_id, tail = packs.single_tail(IDS[0], len(BLOBS[0]))
    assert packs.read_trailer(one_id, BLOBS[0] + tail) == [[IDS[0], 0, len(BLOBS[0])]]


def test_a_pack_of_an_older_repository_format_1_is_still_read_and_checked():
    pack_id, data = _pack(1)
    assert packs.read_trailer(pack_id, data) == [[i, off, ln] for i, off, ln in json.loads(data[-4 - struct.unpack(
        "<I", data[-4:])[0]:-4])["blobs"]]
    flipped = bytearray(data)
    flipped[10] ^= 1
    with pytest.raises(IntegrityError, match="do not hash to its name"):
        packs.read_trailer(pack_id, bytes(flipped))


@pytest.mark.parametrize("attack", ["blob byte", "header byte", "bytes between", "another pack", "trailer",
                                    "gap in a crafted pack", "overlap in a crafted pack", "blob of another id",
                                    "crafted pack claiming format 1", "no blobs"])
def test_what_the_owner_of_a_target_does_to_a_pack_is_refused(attack):
    """Whatever the owner of the target writes under a pack's name, or writes as a new pack of its
    own, is refused unless it is exactly blobs that hash to the ids its header names, back to back."""
    pack_id, data = _pack()
    if attack == "blob byte":
        data = bytes([data[0] ^ 1]) + data[1:]
    elif attack == "header byte":
        at = sum(map(len, BLOBS)) + 5
        data = data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]
    elif attack == "bytes between":
        _, data = _pack(between=b"hidden")  # the same header, so the same name: the blobs no longer fill
    elif attack == "another pack":
        _, data = _pack(blobs=BLOBS[:2], ids=IDS[:2])
    elif attack == "trailer":
        data = data[:-4] + struct.pack("<I", 10**6)
    elif attack == "gap in a crafted pack":  # a name of its own, from a header it wrote
        pack_id, data = _pack(entries=[[IDS[0], 0, len(BLOBS[0])], [IDS[1], len(BLOBS[0]) + 1, len(BLOBS[1])]],
                              blobs=[BLOBS[0], b"x", BLOBS[1]])
    elif attack == "overlap in a crafted pack":
        pack_id, data = _pack(entries=[[IDS[0], 0, len(BLOBS[0])], [IDS[0], 0, len(BLOBS[0])]], blobs=[BLOBS[0]])
    elif attack == "blob of another id":
        pack_id, data = _pack(ids=[IDS[1], *IDS[1:]])
    elif attack == "crafted pack claiming format 1":  # named by the header, as format 2 is
        good_id, data = _pack(1)
        header = data[sum(map(len, BLOBS)):-4]
        pack_id = hashlib.sha256(header).hexdigest()
    elif attack == "no blobs":
        pack_id, data = _pack(blobs=[], ids=[])
    with pytest.raises(IntegrityError):
        packs.read_trailer(pack_id, data)


def _to_format_1(url: str) -> int:
    """Rewrite every pack on the target as an older version wrote it (format 1, named by the hash of
    all its bytes), and the indexes to name them: the repository an upgrade finds. Returns the count."""
    repo = Repo(url)
    rewritten = 0
    for name in repo.list(INDEX):
        index = json.loads(repo.get(name))
        packs_1 = {}
        for pack_id, p in index["packs"].items():
            data = repo.get(data_name(pack_id))
            blobs = b"".join(data[off:off + ln] for _, off, ln in p["blobs"])
            header = json.dumps({"format": 1, "blobs": p["blobs"]}, separators=(",", ":")).encode()
            old = blobs + header + struct.pack("<I", len(header))
            old_id = hashlib.sha256(old).hexdigest()
            repo.put(data_name(old_id), old)
            repo.delete(data_name(pack_id))
            packs_1[old_id] = {"size": len(old), "blobs": p["blobs"]}
            rewritten += 1
        repo.write_index(packs_1)
        repo.delete(name)
    return rewritten


def test_an_older_repository_of_format_1_packs_verifies_restores_and_takes_new_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(packs, "PACK_TARGET", 30_000)  # a few packs
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=2)
    act = actor(o)
    add_docs(o, numbers[0], 6, 9_000, tmp_path / "src", seed=1, act=act)
    add_docs(o, numbers[1], 1, packs.SMALL_BLOB + 5, tmp_path / "src", seed=2, act=act)  # a pack of its own
    url = f"file://{tmp_path / 'target'}"
    v = Vault.open(o.vault_dir)
    first = backup.run(v, url)
    assert _to_format_1(url) >= 3
    assert all(json.loads(Repo(url).get(n)[-4 - struct.unpack("<I", Repo(url).get(n)[-4:])[0]:-4])["format"] == 1
               for n in Repo(url).list(DATA))
    rep = backup.verify(url, read_fraction=1.0)
    assert rep.ok, rep.problems
    backup.restore(url, first.snapshot, tmp_path / "old", act.read_identities(), member=act.identity)
    # A new run to the old repository writes format-2 packs beside the old ones: both are read.
    add_docs(o, numbers[0], 2, 9_000, tmp_path / "src", seed=3, act=act)
    second = backup.run(Vault.open(o.vault_dir), url)
    assert second.packs_new >= 1
    assert backup.verify(url, read_fraction=1.0).ok
    backup.restore(url, "latest", tmp_path / "new", act.read_identities(), member=act.identity)
    assert tree_digest(tmp_path / "new") == tree_digest(o.vault_dir)
    # An old pack damaged is still named, by the rule of its own format.
    old = next(n for n in Repo(url).list(DATA)
               if json.loads(Repo(url).get(n)[-4 - struct.unpack("<I", Repo(url).get(n)[-4:])[0]:-4])["format"] == 1)
    path = tmp_path / "target" / old
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 1
    path.write_bytes(bytes(raw))
    problems = [str(p) for p in backup.verify(url, read_fraction=1.0).problems]
    assert [p for p in problems if old in p] == [f"{old}: damaged (blob {blob} does not hash to its id)"
                                                 for blob, off, ln in _entries_of(path.read_bytes())
                                                 if off <= len(raw) // 3 < off + ln], problems


@pytest.mark.parametrize("size", [0, 1, 70_000, packs.SMALL_BLOB - 1, packs.SMALL_BLOB, packs.SMALL_BLOB + 1])
@pytest.mark.parametrize("told", ["right", "less", "more"])
def test_a_file_is_hashed_whole_whatever_size_its_status_gave(tmp_path, size, told):
    """The reader sizes its first read by the status taken at capture; a file that is not that size
    is still read to its end (and packed only if small)."""
    from vault.backup import upload

    data = random.Random(size).randbytes(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    hint = {"right": size, "less": max(size - 5000, 0), "more": size + 5000}[told]
    blob, got = upload.hash_file(path, hint)
    assert blob == hashlib.sha256(data).hexdigest()
    assert got == (data if size < packs.SMALL_BLOB else None)


def _entries_of(data: bytes) -> list[tuple[str, int, int]]:
    """The blobs a pack's header lists (id cut to 16 characters), read without checking anything."""
    n = struct.unpack("<I", data[-4:])[0]
    return [(b[:16], off, ln) for b, off, ln in json.loads(data[-4 - n:-4])["blobs"]]


def test_verify_names_a_damaged_pack_once_with_what_is_damaged(tmp_path, monkeypatch):
    """A flipped byte in a blob names that blob; one in the header names the header's check — once each."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(packs, "PACK_TARGET", 30_000)
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=1)
    add_docs(o, numbers[0], 6, 9_000, tmp_path / "src", seed=1, act=actor(o))
    url = f"file://{tmp_path / 'target'}"
    backup.run(Vault.open(o.vault_dir), url)
    name = next(n for n in Repo(url).list(DATA) if len(_entries_of(Repo(url).get(n))) >= 2)
    path = tmp_path / "target" / name
    good = path.read_bytes()
    blob, off, ln = _entries_of(good)[1]
    for at, want in [(off + ln // 2, f"{name}: damaged (blob {blob} does not hash to its id)"),
                     (len(good) - 4 - 10, f"{name}: damaged (its bytes do not hash to its name)")]:
        raw = bytearray(good)
        raw[at] ^= 1
        path.write_bytes(bytes(raw))
        rep = backup.verify(url, read_fraction=1.0)
        assert [str(p) for p in rep.problems] == [want]
    path.write_bytes(good)
    assert backup.verify(url, read_fraction=1.0).ok
