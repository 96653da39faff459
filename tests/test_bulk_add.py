"""Bulk add: many dossiers under one lock, every file durable before the history commits it [R-1.3.1, R-3.1.3]."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vault.archive import audit, authority
from vault.archive.manifests import load_manifest, resolve
from vault.errors import ConflictError
from vault.office import check as checker, documents
from vault.store import syncing



@pytest.fixture
def office(office):
    office.numbers = [office.create(name=f"Bulk Customer {i}") for i in range(3)]
    return office


def _files(d: Path, n: int, tag: str) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = d / f"{tag}-{i}.txt"
        p.write_bytes(f"content {tag} {i}\n".encode() * 50)
        out.append(p)
    return out


def _view(actor, docno: str) -> bytes:
    buf = io.BytesIO()
    documents.view(actor, docno, buf)
    return buf.getvalue()


def _add(actor, batch):
    return documents.add_many(actor, batch, category="contract", source="sales desk", date="2026-01-01",
                              original=True)


def test_one_entry_per_dossier_and_the_numbers_in_the_callers_order(office, tmp_path):
    a, b, c = office.numbers
    fa, fb, fa2 = _files(tmp_path / "in", 3, "a"), _files(tmp_path / "in", 2, "b"), _files(tmp_path / "in", 2, "a2")
    actor = office.actor()
    before = [e["seq"] for e in audit.entries(actor.vault)][-1]
    revs = {n: load_manifest(actor.vault, resolve(actor.vault, n)).revision for n in (a, b, c)}
    out = _add(actor, [(a, fa), (b, fb), (a, fa2)])
    assert out == [[f"{a}/0001", f"{a}/0002", f"{a}/0003"], [f"{b}/0001", f"{b}/0002"], [f"{a}/0004", f"{a}/0005"]]
    new = [e for e in audit.entries(actor.vault) if e["seq"] > before and e["action"] == "doc.add"]
    # A dossier named twice takes all its files in one revision: one entry each, a and b.
    assert [(e["number"], e.get("ref")) for e in new] == [(f"{a}/0001", f"{a}/0005"), (f"{b}/0001", f"{b}/0002")]
    after = {n: load_manifest(actor.vault, resolve(actor.vault, n)).revision for n in (a, b, c)}
    assert after == {a: revs[a] + 1, b: revs[b] + 1, c: revs[c]}
    for docno, f in zip([*out[0], *out[2], *out[1]], [*fa, *fa2, *fb]):
        assert _view(actor, docno) == f.read_bytes()
    assert office.json("check", "--read-data", who="bob")["ok"]


def test_a_closed_dossier_in_the_batch_writes_nothing_anywhere(office, tmp_path):
    a, b, _ = office.numbers
    office.run("dossier", "close", b, "--date", "2026-01-02", who="bob")
    actor = office.actor()
    doc_dirs = [office.vault_dir / "dossiers" / resolve(actor.vault, n) / "documents" for n in (a, b)]
    seen = [sorted(d.iterdir()) if d.exists() else [] for d in doc_dirs]
    with pytest.raises(ConflictError, match="closed"):
        _add(actor, [(a, _files(tmp_path / "in", 2, "a")), (b, _files(tmp_path / "in", 1, "b"))])
    assert [sorted(d.iterdir()) if d.exists() else [] for d in doc_dirs] == seen
    assert [e for e in audit.entries(actor.vault)][-1]["outcome"] == "refused"


def test_every_file_is_durable_before_the_entries_are_appended(office, tmp_path, monkeypatch):
    """The order the commit protocol needs: documents, key tables and staged manifests synced, then
    the history appended (the commit point), then the renames synced."""
    actor = office.actor()
    events: list[tuple] = []
    real_sync_files, real_append, real_sync_dirs = syncing.sync_files, audit._append, syncing.sync_dirs

    def sync_files(paths):
        events.append(("sync", {p.relative_to(office.vault_dir).as_posix() for p in paths}))
        real_sync_files(paths)

    def append(log, data):
        events.append(("append", data.count(b"\n")))
        real_append(log, data)

    def sync_dirs(dirs):
        events.append(("dirs", len(set(dirs))))
        real_sync_dirs(dirs)

    monkeypatch.setattr(audit, "sync_files", sync_files)
    monkeypatch.setattr(audit, "_append", append)
    monkeypatch.setattr(audit, "sync_dirs", sync_dirs)
    a, b, c = office.numbers
    out = _add(actor, [(n, _files(tmp_path / "in", 4, n)) for n in (a, b, c)])
    kinds = [k for k, _ in events]
    assert kinds == ["sync", "append", "dirs"]  # one of each for the whole batch
    synced = events[0][1]
    ids = {n: resolve(actor.vault, n) for n in (a, b, c)}
    m = {n: load_manifest(actor.vault, ids[n]) for n in (a, b, c)}
    for n, nums in zip((a, b, c), out):
        docs = {d.number: d.id for d in m[n].documents}
        assert {f"dossiers/{ids[n]}/documents/{docs[x]}.age" for x in nums} <= synced
        # The key table is staged beside the manifest and committed by the same entry (FORMAT §18.5):
        # the one in place is not touched before the commit point.
        assert f"keys/{ids[n]}.age.pending" in synced
        assert f"keys/{ids[n]}.age" not in synced
        assert f"dossiers/{ids[n]}/manifest.toml.pending" in synced
    assert events[1][1] == 3  # three entries, one write


def test_an_interrupted_batch_commits_nothing_and_the_next_write_cleans_up(office, tmp_path, monkeypatch):
    actor = office.actor()
    a, b, _ = office.numbers
    before = authority.state(actor.vault)["count"]

    def crash(log, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit, "_append", crash)
    with pytest.raises(OSError):
        _add(actor, [(a, _files(tmp_path / "in", 3, "a")), (b, _files(tmp_path / "in", 3, "b"))])
    monkeypatch.undo()
    actor = office.actor()
    assert authority.state(actor.vault)["count"] == before
    assert [load_manifest(actor.vault, resolve(actor.vault, n)).documents for n in (a, b)] == [(), ()]
    # Left behind: staged manifests and unreferenced documents — no problem, only notes; the next
    # exclusive lock drops the staged manifests.
    rep = checker.check(actor.vault, actor=actor)
    assert rep.ok, rep.problems
    out = _add(actor, [(a, _files(tmp_path / "in2", 1, "a"))])
    assert out == [[f"{a}/0001"]]
    assert not list(office.vault_dir.rglob("*.pending"))
