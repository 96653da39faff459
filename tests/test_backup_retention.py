"""Backups keep what retention keeps [R-3.3.1, R-3.3.2]: prune never drops the last copy of a record
whose retention has not ended, and the key mirror never drops the last generation of a table the
history did not destroy."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from backup_helpers import actor, dossier_id
from vault import backup
from vault.archive.manifests import load_manifest
from vault.backup import mirror
from vault.backup.repo import Repo


pytestmark = pytest.mark.office(dossier={"name": "Retained Customer Ltd"}, now="2026-03-01T12:00:00",
                                doc="a contract kept ten years after it is fulfilled")


@pytest.fixture
def office(office, tmp_path):
    office.contract = office.doc
    office.url = f"file://{tmp_path / 'target'}"
    return office


def _lose_the_contract(office) -> None:
    """The vault directory loses the contract's ciphertext (a disk error, a careless hand)."""
    v = office.open()
    did = dossier_id(office, office.number)
    doc = next(d for d in load_manifest(v, did).documents if d.number == office.contract)
    v.layout.document(did, doc.id).unlink()


def _prune(office) -> dict:
    return office.json("backup", "prune", office.url, "--keep-daily", "1")


def test_prune_keeps_the_last_copy_of_a_document_whose_retention_has_not_ended(office):
    """[R-3.3.2] A keep rule that would forget the only snapshot holding an unfinished contract keeps
    it; once retention has ended and the contract is destroyed by procedure, prune lets it go."""
    v = office.open()
    s1 = backup.run(v, office.url).snapshot
    _lose_the_contract(office)
    office.at("2026-03-02T12:00:00")
    s2 = backup.run(v, office.url).snapshot

    # Holds alone (the old behaviour) would let the only copy go.
    assert set(backup.prune(office.url, keep_daily=1, dry_run=True).forgotten) == {s1}
    rep = _prune(office)
    assert set(rep["kept"]) == {s1, s2} and rep["forgotten"] == []
    assert "whose retention has not ended" in " ".join(rep["kept"][s1])
    text = office.run("backup", "prune", office.url, "--keep-daily", "1", "--dry-run").stdout
    assert f"kept {s1[:8]}: holds the only copy of 1 record(s) of dossier" in text
    assert backup.verify(office.url, read_fraction=1.0).ok
    restored = office.root / "restored"
    backup.restore(office.url, s1, restored, actor(office).read_identities())
    assert office.run("--vault", str(restored), "doc", "view", office.contract, who="bob").stdout.startswith("a contract")

    # The contract was fulfilled long ago: its ten years are over, it is destroyed without an override.
    office.run("doc", "event", office.contract, "contract-fulfilled", "--date", "2014-06-30", who="bob")
    office.run("destroy", "request", office.contract, "--reason", "retention ended", who="bob")
    office.run("destroy", "approve", "D-000001", who="alice")
    office.run("destroy", "execute", "D-000001", who="alice")
    rep = _prune(office)
    assert set(rep["kept"]) == {s2} and rep["forgotten"] == [s1]


def test_a_document_whose_retention_ended_is_not_kept_by_prune(office):
    """Retention protects only until its end: an ended contract's lost ciphertext is not held back."""
    office.run("doc", "event", office.contract, "contract-fulfilled", "--date", "2014-06-30", who="bob")
    v = office.open()
    s1 = backup.run(v, office.url).snapshot
    _lose_the_contract(office)
    office.at("2026-03-02T12:00:00")
    s2 = backup.run(v, office.url).snapshot
    rep = _prune(office)
    assert list(rep["kept"]) == [s2] and rep["forgotten"] == [s1]


def test_a_lost_key_table_keeps_its_last_mirrored_generation(office):
    """The key table is the only thing that opens the backed-up ciphertext: one missing from the vault
    (not destroyed by the history) gets no tombstone, and the window never expires its last generation."""
    v = office.open()
    did = dossier_id(office, office.number)
    backup.run(v, office.url, key_window=dt.timedelta(hours=1))
    v.layout.key_table(did).unlink()
    for hour in ("14", "16", "18"):
        office.at(f"2026-03-01T{hour}:00:00")
        rep = backup.run(v, office.url, key_window=dt.timedelta(hours=1))
        assert rep.keys_missing == [f"{did}.age"]
    gens = mirror.generations(Repo(office.url))[f"{did}.age"]
    assert len(gens) == 1 and not gens[-1].deleted
    res = office.run("backup", "run", office.url)
    assert f"problem: keys/{did}.age is missing from the vault" in res.stdout
    assert json.loads(office.run("backup", "run", office.url, "--json").stdout)["keys_missing"] == [f"{did}.age"]


def test_a_destroyed_dossier_leaves_the_mirror(office):
    """Keeping what retention keeps never keeps what a destruction removed."""
    v = office.open()
    did = dossier_id(office, office.number)
    backup.run(v, office.url)
    office.run("dossier", "close", office.number, "--date", "2026-03-01", who="bob")
    office.run("destroy", "request", office.number, "--reason", "opened by mistake", who="bob")
    office.run("destroy", "approve", "D-000001", "--override-retention", "never a customer", who="alice")
    office.run("destroy", "execute", "D-000001", who="alice")
    assert f"{did}.age" not in mirror.generations(Repo(office.url))
    assert backup.run(v, office.url).keys_missing == []
