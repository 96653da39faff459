"""A keyless ``vault check`` settles a dossier whole when it finds it as this client left it
(``checkdocs.settled``): whoever writes the vault directory still cannot get a change past it."""

from __future__ import annotations

import json
import os

import pytest

from vault.archive import checkcache, witness
from vault.archive.vault import Vault
from vault.office import check as checker

from test_check_cache import HASH_PROBLEM, _docs, _next_tick, two_by_two


@pytest.fixture
def office(office, tmp_path, monkeypatch):
    """Two dossiers of two documents each (as in test_check_cache); every status counts as settled."""
    return two_by_two(office, tmp_path, monkeypatch, "settled")


def _check(o):
    return checker.check(Vault.open(o.vault_dir))


def _settled_twice(o, monkeypatch):
    """A check, then a second that settles every dossier whole: no document is looked at one by one."""
    assert _check(o).ok
    calls = []
    real = checker.checkdocs.unchanged
    monkeypatch.setattr(checker.checkdocs, "unchanged", lambda *a: calls.append(1) or real(*a))
    rep = _check(o)
    assert rep.ok, rep.problems
    assert rep.counts["unchanged"] == rep.counts["documents"] == 4 and rep.counts["dossiers"] == 2
    assert calls == []
    v = Vault.open(o.vault_dir)
    cache = json.loads((witness.state_dir(v) / checkcache.NAME).read_bytes())
    assert len(cache["dossiers"]) == 2
    return v


def test_a_document_changed_in_place_with_its_mtime_restored_is_named(office, monkeypatch):
    v = _settled_twice(office, monkeypatch)
    rel, d = _docs(office, v)[3]
    path = v.root / rel
    before = os.stat(path)
    _next_tick(path)
    data = bytearray(path.read_bytes())
    data[7] ^= 1
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    rep = _check(office)
    assert [str(p) for p in rep.problems] == [f"{rel} ({d.number}): {HASH_PROBLEM}"]
    assert rep.counts["unchanged"] == 3  # the other dossier settled whole, this one's other document by status


def test_a_missing_document_and_a_leftover_file_are_named(office, monkeypatch):
    v = _settled_twice(office, monkeypatch)
    docs = _docs(office, v)
    gone, d = docs[0]
    (v.root / gone).unlink()
    stray = v.root / docs[2][0]
    stray.with_name("stray.age").write_bytes(b"left behind")
    rep = _check(office)
    assert [str(p) for p in rep.problems] == [f"{gone} ({d.number}): missing"]
    dossier = docs[2][0].split("/")[1]
    assert any(str(n).startswith(f"dossiers/{dossier}/documents/stray.age: not in the manifest") for n in rep.notes)


def test_a_temporary_in_a_documents_directory_is_noted(office, monkeypatch):
    v = _settled_twice(office, monkeypatch)
    rel, _ = _docs(office, v)[1]
    (v.root / rel).with_name(".tmp-left").write_bytes(b"x")
    rep = _check(office)
    assert rep.ok, rep.problems
    tmp = str(os.path.join(os.path.dirname(rel), ".tmp-left"))
    assert any(str(n).startswith(f"{tmp}: temporary file") for n in rep.notes), rep.notes


def test_two_documents_of_two_dossiers_swapped_are_named(office, monkeypatch):
    v = _settled_twice(office, monkeypatch)
    docs = _docs(office, v)
    (a, da), (b, db) = docs[0], docs[3]
    tmp = (v.root / a).with_name("swap")
    os.rename(v.root / a, tmp)
    os.rename(v.root / b, v.root / a)
    os.rename(tmp, v.root / b)
    problems = sorted(str(p) for p in _check(office).problems)
    assert problems == sorted([f"{a} ({da.number}): {HASH_PROBLEM}", f"{b} ({db.number}): {HASH_PROBLEM}"])


def test_a_settled_dossier_the_cache_misstates_is_checked_document_by_document(office, monkeypatch):
    """A dossier entry edited (its hash of the documents, its counts) or one document's remembered hash
    edited: never believed, the dossier is checked one document at a time, and nothing is named."""
    v = _settled_twice(office, monkeypatch)
    p = witness.state_dir(v) / checkcache.NAME
    cache = json.loads(p.read_bytes())
    first, second = sorted(cache["dossiers"])
    cache["dossiers"][first][8] = "0" * 64
    cache["dossiers"][first][9] = 99
    rel = next(r for r in cache["files"] if r.startswith(f"dossiers/{second}/"))
    cache["files"][rel][5] = "0" * 64
    p.write_text(json.dumps(cache))
    rep = _check(office)
    assert rep.ok, rep.problems
    assert rep.counts["documents"] == 4 and rep.counts["unchanged"] == 3  # the misstated one hashed again
    assert _check(office).counts["unchanged"] == 4
