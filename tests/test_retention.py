"""Retention schedules, legal holds and destruction by crypto-shredding, across years [R-3.3.2]."""

from __future__ import annotations

import hashlib
import io
import os
import shutil

import pytest

from office import MARKERS, PASSPHRASE, SAM
from vault.store import identity
from vault.crypto import age
from vault.archive.manifests import load_manifest, resolve
from vault.errors import NoIdentityMatchError
from vault.store.keytable import read_key_table


pytestmark = pytest.mark.office(SAM, ("staff", "staff", "sales"), now="2026-01-10T12:00:00",
                                dossier={"name": MARKERS["name"], "contact": MARKERS["contact"]})


@pytest.fixture
def office(office):
    """A contract, the basic information and a feedback letter in the dossier."""
    office.docs = {cat: office.add_text(office.number, f"{MARKERS['content']} {cat}", "bob", cat, name=f"{cat}.txt")
                   for cat in ("contract", "basic-info", "feedback")}
    return office


def _report(office, *args):
    return {r["number"]: r for r in office.json("retention", "report", *args, who="bob")}


def test_schedules_run_from_their_events(office):
    rep = _report(office)
    assert rep[office.docs["contract"]]["status"] == "waiting"  # not fulfilled yet
    assert rep[office.docs["feedback"]]["status"] == "waiting"  # dossier still open
    office.at("2028-07-01T12:00:00")  # events are recorded once they have happened
    office.run("doc", "event", office.docs["contract"], "contract-fulfilled", "--date", "2027-03-01", who="bob")
    office.run("dossier", "close", office.number, "--date", "2028-06-30", who="bob")
    rep = _report(office)
    assert (rep[office.docs["contract"]]["rule"], rep[office.docs["contract"]]["until"]) == ("contracts", "2037-03-01")
    assert (rep[office.docs["feedback"]]["rule"], rep[office.docs["feedback"]]["until"]) == ("general", "2033-06-30")
    assert _report(office, "--due") == {}
    office.at("2033-05-01T12:00:00")
    assert set(_report(office, "--upcoming", "90")) == {office.docs["basic-info"], office.docs["feedback"]}
    office.at("2033-07-01T12:00:00")
    assert set(_report(office, "--due")) == {office.docs["basic-info"], office.docs["feedback"]}
    office.at("2037-03-02T12:00:00")
    assert set(_report(office, "--due")) == set(office.docs.values())
    bad = office.run("doc", "event", office.docs["contract"], "moon-landing", "--date", "2027-01-01", who="bob", ok=False)
    assert bad.exit_code == 1 and "unknown event" in bad.stderr


def _destroy(office, target, *, approver="sam", override=None):
    no = office.json("destroy", "request", target, "--reason", MARKERS["legal_rep"], who="alice")["number"]
    args = ["destroy", "approve", no] + (["--override-retention", override] if override else [])
    office.run(*args, who=approver)
    return no


def test_procedure_is_enforced(office):
    doc = office.docs["feedback"]
    no = office.json("destroy", "request", doc, "--reason", "spent", who="alice")["number"]
    res = office.run("destroy", "approve", no, who="alice", ok=False)
    assert res.exit_code == 1 and "your own" in res.stderr
    res = office.run("destroy", "execute", no, who="alice", ok=False)
    assert res.exit_code == 1 and "not approved" in res.stderr
    office.run("destroy", "approve", no, who="sam")
    res = office.run("destroy", "execute", no, who="alice", ok=False)
    assert res.exit_code == 1 and "retention has not ended" in res.stderr
    office.at("2031-02-02T12:00:00")
    office.run("dossier", "close", office.number, "--date", "2026-02-01", who="bob")
    office.run("hold", "add", office.number, "--reason", "litigation", who="alice")
    assert _report(office)[doc]["status"] == "held"
    res = office.run("destroy", "execute", no, who="alice", ok=False)
    assert res.exit_code == 1 and "legal hold" in res.stderr
    office.run("hold", "remove", office.number, "--reason", "case settled", who="alice")
    cert = office.json("destroy", "execute", no, who="alice")
    assert cert["destroyed"][0]["number"] == doc and not cert["retention_overridden"]
    assert office.run("destroy", "execute", no, who="alice", ok=False).exit_code == 1
    res = office.run("destroy", "request", office.docs["contract"], "--reason", "x", who="staff", ok=False)
    assert res.exit_code == 1 and "may not destroy.request" in res.stderr


def test_destroying_one_document_spares_the_rest_and_leaves_a_ghost(office, tmp_path):
    v = office.open()
    did = resolve(v, office.number)
    before = {cat: office.run("doc", "view", n, who="bob").stdout_bytes for cat, n in office.docs.items()}
    snapshot = tmp_path / "snapshot"  # what backups keep long-term: everything but the key tables
    shutil.copytree(office.vault_dir, snapshot, ignore=shutil.ignore_patterns("keys"))
    no = _destroy(office, office.docs["contract"], override="court order 42")
    cert = office.json("destroy", "execute", no, who="alice")
    assert cert["retention_overridden"] and cert["approved_by"] == "sam" and cert["executed_by"] == "alice"
    for cat in ("basic-info", "feedback"):
        assert office.run("doc", "view", office.docs[cat], who="bob").stdout_bytes == before[cat]
    gone = office.run("doc", "view", office.docs["contract"], who="bob", ok=False)
    assert gone.exit_code == 1 and "destroyed" in gone.stderr
    ghost = next(d for d in office.json("doc", "list", office.number, who="bob") if d["number"] == office.docs["contract"])
    assert ghost["status"] == "destroyed" and ghost["category"] == "contract" and "title" not in ghost
    assert office.json("check", "--read-data", who="bob")["ok"]
    assert "is valid" in office.run("destroy", "verify", no).stdout
    cert_file = office.vault_dir / "destructions" / f"{no}.certificate.toml"
    cert_file.write_text(cert_file.read_text().replace('whole_dossier = false', 'whole_dossier = true'))
    res = office.run("destroy", "verify", no, ok=False)
    assert res.exit_code == 1 and "does not match history" in res.stderr
    # The snapshot guarantee: with the current key tables, no member decrypts the destroyed document.
    entry = cert["destroyed"][0]
    old = next(p for p in (snapshot / "dossiers" / did / "documents").iterdir()
               if hashlib.sha256(p.read_bytes()).hexdigest() == entry["sha256"])
    for who in ("alice", "sam", "bob"):
        actor = v.act_as(identity.load_identity(office.ident(who), PASSPHRASE))
        table = read_key_table(v.layout.key_table(did), actor.read_identities(), dossier=did)
        with pytest.raises(NoIdentityMatchError):
            age.decrypt(open(old, "rb"), io.BytesIO(), [table.identity(), *actor.read_identities()])


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_destroy_execute_overwrites_nothing_through_a_link_and_waits_on_no_fifo(office, tmp_path, kind):
    """Someone who can write the vault directory replaces the document to destroy by a link to a
    file outside it (or by a FIFO): the execution's overwrite with random bytes must not reach what
    the link names, nor wait on the FIFO; the document is destroyed all the same."""
    v = office.open()
    did = resolve(v, office.number)
    doc = next(d for d in load_manifest(v, did).documents if d.number == office.docs["contract"])
    path = v.layout.document(did, doc.id)
    victim = tmp_path / "victim"
    victim.write_bytes(path.read_bytes())
    path.unlink()
    os.mkfifo(path) if kind == "fifo" else path.symlink_to(victim)
    no = _destroy(office, office.docs["contract"], override="court order 42")
    cert = office.json("destroy", "execute", no, who="alice")
    assert [d["number"] for d in cert["destroyed"]] == [office.docs["contract"]]
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == doc.sha256  # not overwritten
    assert not os.path.lexists(path)
    assert office.json("check", who=None)["ok"]


def test_destroying_a_dossier_removes_every_key_and_the_index(office, tmp_path):
    office.at("2040-01-01T12:00:00")
    office.run("dossier", "close", office.number, "--date", "2026-01-20", who="bob")
    office.run("doc", "event", office.docs["contract"], "contract-fulfilled", "--date", "2026-01-20", who="bob")
    v = office.open()
    did = resolve(v, office.number)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(office.vault_dir, snapshot, ignore=shutil.ignore_patterns("keys"))
    no = _destroy(office, office.number)
    cert = office.json("destroy", "execute", no, who="alice")
    assert cert["whole_dossier"] and len(cert["destroyed"]) == 3
    assert not v.layout.key_table(did).exists()
    assert not list((office.vault_dir / "dossiers" / did / "documents").iterdir())
    assert office.run("find", "--name", MARKERS["name"], who="bob", ok=False).exit_code == 1
    shown = office.json("dossier", "show", office.number, who="bob")
    assert shown["status"] == "destroyed" and "profile" not in shown
    res = office.run("request", "access", office.number, "--purpose", "x", who="staff", ok=False)
    assert res.exit_code == 1 and "destroyed" in res.stderr
    # The archive number is never reused.
    new = office.create(name="Someone Else")
    assert new != office.number
    for p in (snapshot / "dossiers" / did / "documents").iterdir():
        with pytest.raises(NoIdentityMatchError):
            ids = v.act_as(identity.load_identity(office.ident("alice"), PASSPHRASE)).read_identities()
            age.decrypt(open(p, "rb"), io.BytesIO(), ids)
    assert office.json("check", "--read-data", who="alice")["ok"]
    assert office.json("audit", "verify")["ok"]
    for p in office.vault_dir.rglob("*"):
        if p.is_file():
            for m in MARKERS.values():
                assert m.encode() not in p.read_bytes()


def test_destruction_reaches_backup_targets(office, tmp_path):
    target = f"file://{tmp_path / 'offsite'}"
    office.run("backup", "run", target)
    no = _destroy(office, office.docs["feedback"], override="customer asked for erasure")
    cert = office.json("destroy", "execute", no, who="alice")
    (report,) = cert["backup_targets"]
    assert report["target"] == target and report["reached"] and report["removed"]
    assert cert["undecryptable_from_backups_after"] == cert["executed_at"]


def test_a_forged_destruction_approval_destroys_nothing(office):
    from vault.store import records

    no = office.json("destroy", "request", office.docs["feedback"], "--reason", "x", who="alice")["number"]
    bob = office.open().act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    req = records.load_toml(office.vault_dir / "destructions" / f"{no}.toml")
    forged = bob.sign({"format": 1, "destruction": no, "request_sha256": hashlib.sha256(records.canonical(req)).hexdigest(),
                       "by": "bob", "at": office.clock.stamp(), "override_retention": "x"})
    records.write_toml(office.vault_dir / "destructions" / f"{no}.approval.toml", forged)
    res = office.run("destroy", "execute", no, who="alice", ok=False)
    assert res.exit_code == 1 and "supervisor other than the requester" in res.stderr
    assert office.run("doc", "view", office.docs["feedback"], who="bob").stdout.startswith(MARKERS["content"])


def test_a_hold_deleted_behind_the_vaults_back_is_named(office):
    office.run("hold", "add", office.number, "--reason", "litigation", who="alice")
    assert office.json("check", who="bob")["ok"]
    for p in (office.vault_dir / "holds").iterdir():
        p.unlink()
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and "holds/" in res.stdout and "missing (history entry" in res.stdout
    # The hold is a fact of the history: deleting its file freed nothing.
    res = office.run("hold", "add", office.number, "--reason", "again", who="alice", ok=False)
    assert res.exit_code == 1 and "already on hold" in res.stderr
    office.run("hold", "remove", office.number, "--reason", "case settled", who="alice")
    assert office.json("check", who="bob")["ok"]


def test_a_closed_dossier_takes_no_documents_until_reopened(office, tmp_path):
    """[R-3.3.2] Closing starts the 'dossier-closed' clock; adding to it would hide material from it."""
    office.run("dossier", "close", office.number, "--date", "2026-01-09", who="bob")
    f = tmp_path / "late.txt"
    f.write_text(MARKERS["content"])
    res = office.run("doc", "add", office.number, str(f), "--category", "feedback", "--source", "desk",
                     "--date", "2026-01-09", "--original", who="bob", ok=False)
    assert res.exit_code == 1 and "was closed on 2026-01-09" in res.stderr and "dossier reopen" in res.stderr
    sid = office.json("intake", "submit", str(f), "--for", office.number, "--category", "feedback",
                      "--source", "customer", "--date", "2026-01-09")["ids"][0]
    res = office.run("intake", "accept", sid, who="bob", ok=False)
    assert res.exit_code == 1 and "closed" in res.stderr
    assert office.run("dossier", "reopen", office.number, who="staff", ok=False).exit_code == 1
    office.run("dossier", "reopen", office.number, who="bob")
    assert office.json("dossier", "show", office.number, who="bob")["status"] == "open"
    assert _report(office)[office.docs["feedback"]]["status"] == "waiting"  # the closing no longer counts
    office.add_doc(office.number, f, "bob", "feedback")
    office.run("intake", "accept", sid, who="bob")
    assert office.run("dossier", "reopen", office.number, who="bob", ok=False).exit_code == 1
    assert [e["action"] for e in office.json("audit", "log", "--dossier", office.number, who="alice")
            if e["action"].startswith("dossier.")].count("dossier.reopen") == 1
    assert office.json("check", who="bob")["ok"] and office.json("audit", "verify")["ok"]


@pytest.mark.parametrize("date", ["2026-01-11", "1899-12-31", "3026-01-01"])
def test_dates_in_the_future_or_before_1900_need_force(office, tmp_path, date):
    """[R-3.1.3] A mistyped date would start or stop a retention clock: refused unless forced."""
    f = tmp_path / "d.txt"
    f.write_text("x")
    for args in (("doc", "add", office.number, str(f), "--category", "other", "--source", "desk", "--date", date,
                  "--original"),
                 ("doc", "event", office.docs["contract"], "contract-fulfilled", "--date", date),
                 ("dossier", "close", office.number, "--date", date)):
        res = office.run(*args, who="bob", ok=False)
        assert res.exit_code == 1 and "--force-date" in res.stderr, args
    res = office.run("intake", "submit", str(f), "--for", office.number, "--category", "other", "--source", "x",
                     "--date", date, ok=False)
    assert res.exit_code == 1 and "--force-date" in res.stderr
    office.run("doc", "event", office.docs["contract"], "contract-fulfilled", "--date", date, "--force-date", who="bob")
    office.run("doc", "add", office.number, str(f), "--category", "other", "--source", "desk", "--date", date,
               "--original", "--force-date", who="bob")
    office.run("doc", "event", office.docs["contract"], "contract-fulfilled", "--date", "2026-01-10", who="bob")


def test_a_destroyed_dossier_takes_no_hold_and_no_event(office):
    """A hold or an event on a destroyed dossier is refused in one line and leaves the vault as it
    was (both said they were done while their entries counted for nothing; the event rewrote the
    destroyed dossier's manifest, which check then named and every read of it refused)."""
    no = _destroy(office, office.number, override="court order 42")
    office.run("destroy", "execute", no, who="alice")
    log = (office.vault_dir / "audit" / "log.jsonl").read_bytes()
    for args in (("hold", "add", office.number, "--reason", "litigation"),
                 ("doc", "event", office.docs["contract"], "contract-fulfilled", "--date", "2026-01-01")):
        res = office.run(*args, who="bob", ok=False)
        assert res.exit_code == 1 and "has been destroyed" in res.stderr and "Traceback" not in res.output, res.output
        assert len(res.stderr.strip().splitlines()) <= 2, res.stderr
    office.run("check", who="bob")
    # Refusals are entries that change nothing; no entry that would count for nothing was written.
    added = (office.vault_dir / "audit" / "log.jsonl").read_bytes()[len(log):]
    assert b'"outcome":"ok"' not in added, added


def test_a_document_number_that_names_no_document_holds_nothing(office):
    """A hold or a consultation request may name a document by its number; one the dossier does not
    have is refused in one line (a hold was placed on the whole dossier, or lifted, and said
    "E-…/9999 is on hold"; a request was filed for the missing document)."""
    missing = f"{office.number}/9999"
    for args, who in ((("hold", "add", missing, "--reason", "r"), "bob"),
                      (("request", "access", missing, "--purpose", "p"), "staff")):
        res = office.run(*args, who=who, ok=False)
        assert res.exit_code == 1 and f"no document {missing}" in res.stderr and "Traceback" not in res.output, \
            res.output
    assert office.json("hold", "list", who="bob") == []
    office.run("hold", "add", office.docs["contract"], "--reason", "r", who="bob")
    res = office.run("hold", "remove", missing, "--reason", "r", who="alice", ok=False)
    assert res.exit_code == 1 and f"no document {missing}" in res.stderr, res.output
    assert [h["number"] for h in office.json("hold", "list", who="bob")] == [office.number]
