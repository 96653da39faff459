"""Destruction that cannot wedge: an execution is a journal of idempotent steps, resumed after any
failure or kill, and named by ``vault check`` until it finishes [R-3.3.2]."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from office import MARKERS, SAM
from vault.archive import destructions

# Run ``vault`` in a real process that SIGKILLs itself at one checkpoint of the execution (the test
# seam ``destroyexec._interrupt``, which no command line or environment variable reaches).
KILLER = """
import os, signal, sys
from vault.office import destroyexec
from vault.cli import main
stop = sys.argv[1]
def hit(where):
    if where == stop:
        os.kill(os.getpid(), signal.SIGKILL)
destroyexec._interrupt = hit
sys.argv = ["vault", *sys.argv[2:]]
main()
"""

CHECKPOINTS = ["planned", *(x for s in destructions.STEPS for x in (s, f"{s}:recorded"))]


pytestmark = pytest.mark.office(SAM, dossier={"name": MARKERS["name"], "contact": MARKERS["contact"]})


@pytest.fixture
def office(office):
    """A contract and a feedback letter in the dossier."""
    office.docs = [office.add_text(office.number, f"{MARKERS['content']} {cat}", "bob", cat, name=f"{cat}.txt")
                   for cat in ("contract", "feedback")]
    return office


def _approved(office, target: str) -> str:
    no = office.json("destroy", "request", target, "--reason", "erasure asked", who="alice")["number"]
    office.run("destroy", "approve", no, "--override-retention", "customer asked for erasure", who="sam")
    return no


def _killed_at(office, where: str, no: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, VAULT_DIR=str(office.vault_dir), VAULT_IDENTITY=str(office.ident("alice")),
               VAULT_PASSPHRASE_FILE=str(office.root / "pass"))
    return subprocess.run([sys.executable, "-c", KILLER, where, "destroy", "execute", no],
                          env=env, capture_output=True, text=True, timeout=120)


def _assert_destroyed(office, no: str, number: str) -> None:
    cert = office.json("destroy", "certificate", no)
    assert cert["destruction"] == no and cert["whole_dossier"]
    assert "is valid" in office.run("destroy", "verify", no).stdout
    shown = office.json("dossier", "show", number, who="bob")
    assert shown["status"] == "destroyed" and "profile" not in shown
    assert office.run("find", "--name", MARKERS["name"], who="bob", ok=False).exit_code == 1
    rep = office.json("check", "--read-data", who="alice")
    assert rep["ok"], rep
    assert office.json("audit", "verify")["ok"]
    assert [r["state"] for r in office.json("destroy", "list") if r["number"] == no] == ["executed"]


def test_an_empty_dossier_is_destroyed_and_the_office_carries_on(office):
    """[R-3.3.2] A dossier that never had a document has no documents/ directory: destroying it
    used to fail after its key table was gone, wedging review for everyone."""
    empty = office.create(name=MARKERS["name"] + " Empty")
    no = _approved(office, empty)
    cert = office.json("destroy", "execute", no, who="alice")
    assert cert["dossier_number"] == empty and cert["destroyed"] == [] and cert["whole_dossier"]
    assert office.json("check", "--read-data", who="alice")["ok"]
    office.run("review", "due", who="bob")
    office.run("dossier", "completeness", who="bob")
    again = office.run("destroy", "execute", no, who="alice", ok=False)
    assert again.exit_code == 1 and "already been executed" in again.stderr


@pytest.mark.parametrize("where", CHECKPOINTS)
def test_a_destruction_killed_at_any_step_resumes_to_a_valid_certificate(office, where):
    """[R-3.3.2] SIGKILL anywhere in an execution: check names it, the next execute finishes it."""
    no = _approved(office, office.number)
    res = _killed_at(office, where, no)
    assert res.returncode == -9, res.stderr
    if where != "audit:recorded":
        rep = office.run("check", who="bob", ok=False)
        assert rep.exit_code == 1 and f"destruction {no} of {office.number}" in rep.stdout
        assert f"vault destroy execute {no}" in rep.stdout
        assert [r["state"] for r in office.json("destroy", "list") if r["number"] == no] == ["executing"]
        office.run("review", "due", who="bob")  # an unfinished destruction wedges no one
        office.run("dossier", "completeness", who="bob")
        office.run("destroy", "execute", no, who="sam")
    _assert_destroyed(office, no, office.number)
    for p in office.vault_dir.rglob("*"):
        if p.is_file():
            for m in MARKERS.values():
                assert m.encode() not in p.read_bytes()


@pytest.mark.parametrize("where", ["keys", "manifest", "certificate:recorded"])
def test_a_document_destruction_killed_midway_resumes(office, where):
    """[R-3.3.2] The same for one document: the rest of the dossier stays readable."""
    no = _approved(office, office.docs[0])
    assert _killed_at(office, where, no).returncode == -9
    office.run("destroy", "execute", no, who="alice")
    cert = office.json("destroy", "certificate", no)
    assert [d["number"] for d in cert["destroyed"]] == [office.docs[0]] and not cert["whole_dossier"]
    assert office.run("doc", "view", office.docs[0], who="bob", ok=False).exit_code == 1
    assert office.run("doc", "view", office.docs[1], who="bob").stdout.startswith(MARKERS["content"])
    assert office.json("check", "--read-data", who="alice")["ok"]
    assert office.json("audit", "verify")["ok"]


def test_a_forged_execution_journal_is_refused(office):
    """Someone who can write the vault directory cannot plant a plan signed by a non-supervisor."""
    from vault.store import identity, records
    from vault.archive.vault import Vault

    from office import PASSPHRASE

    no = _approved(office, office.docs[0])
    assert _killed_at(office, "planned", no).returncode == -9
    p = office.vault_dir / "destructions" / f"{no}.execution.toml"
    run = records.load_toml(p)
    bob = Vault.open(office.vault_dir).act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    run["documents"] = []
    records.write_toml(p, bob.sign(run))
    res = office.run("destroy", "execute", no, who="alice", ok=False)
    assert res.exit_code == 1 and "execution.toml: does not match history entry" in res.stderr
    shutil.rmtree(office.vault_dir / "destructions")
    assert office.run("doc", "view", office.docs[0], who="bob").stdout.startswith(MARKERS["content"])


def test_counts_and_listings_after_destruction(office):
    """[R-3.3.2] Ghosts are not documents: counts leave them out, listings say which destruction."""
    no = _approved(office, office.docs[0])
    office.run("destroy", "execute", no, who="alice")
    shown = office.json("dossier", "show", office.number, who="bob")
    assert (shown["documents"], shown["current_documents"], shown["destroyed_documents"]) == (1, 1, 1)
    (listed,) = [s for s in office.json("dossier", "list", who="bob") if s["number"] == office.number]
    assert listed["current_documents"] == 1
    assert "1 docs" in office.run("dossier", "list", who="bob").stdout
    ghost = office.json("doc", "list", office.number, who="bob")[0]
    assert ghost["destroyed"]["certificate"] == no
    whole = _approved(office, office.number)
    office.run("destroy", "execute", whole, who="alice")
    res = office.run("doc", "list", office.number, who="bob")
    assert f"destroyed by {whole}, certificate" in res.stdout and "key table" not in res.output
    assert f"{office.docs[0]}" in res.stdout and f"destroyed by {no}" in res.stdout
    assert office.json("dossier", "show", office.number, who="bob")["current_documents"] == 0
