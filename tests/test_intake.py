"""Write-only intake: submitting needs no identity and gives no read access [R-3.1.2]."""

from __future__ import annotations

import pytest

from office import MARKERS, PASSPHRASE
from vault.store import identity
from vault.crypto import age
from vault.errors import NoIdentityMatchError
from vault.archive.vault import Vault


pytestmark = pytest.mark.office(("staff", "staff", "sales"), dossier={"name": "Intake Customer"})


def _submit(office, path, **kw):
    args = ["intake", "submit", str(path), "--for", office.number, "--category", "feedback",
            "--source", MARKERS["source"], "--date", "2026-04-01", "--title", MARKERS["title"]]
    return office.json(*args)["ids"][0]  # no VAULT_IDENTITY: submitting needs none


def test_submit_accept_moves_the_payload_unchanged(office, tmp_path):
    f = tmp_path / "feedback.txt"
    f.write_text(MARKERS["content"])
    sid = _submit(office, f)
    sub = office.vault_dir / "intake" / f"{sid}.age"
    payload_before = sub.read_bytes().split(b"\n---", 1)[1].split(b"\n", 1)[1]
    # The submitter (any member too) cannot read it back: only the intake key opens it.
    staff = identity.load_identity(office.ident("staff"), PASSPHRASE)
    with pytest.raises(NoIdentityMatchError):
        age.decrypt_bytes(sub.read_bytes(), [staff.age_identity()])
    assert [r["id"] for r in office.json("intake", "list", who="bob")] == [sid]
    res = office.run("intake", "list", who="staff", ok=False)
    assert res.exit_code == 1 and "may not intake.manage" in res.stderr

    docno = office.json("intake", "accept", sid, who="bob")["number"]
    assert office.run("doc", "view", docno, who="bob").stdout == MARKERS["content"]
    doc = next(p for p in (office.vault_dir / "dossiers").rglob("documents/*.age"))
    assert doc.read_bytes().split(b"\n---", 1)[1].split(b"\n", 1)[1] == payload_before  # re-wrapped, not re-encrypted
    listed = office.json("doc", "list", office.number, who="bob")[0]
    assert listed["title"] == MARKERS["title"] and listed["original"] is False
    assert office.json("intake", "list", who="bob") == []
    assert office.json("check", "--read-data", who="bob")["ok"]
    assert office.json("audit", "verify")["ok"]


def test_reject_deletes_and_seals_the_reason(office, tmp_path):
    f = tmp_path / "spam.txt"
    f.write_text("spam")
    sid = _submit(office, f)
    office.run("intake", "reject", sid, "--reason", MARKERS["legal_rep"], who="bob")
    assert office.json("intake", "list", who="bob") == []
    assert not (office.vault_dir / "intake" / f"{sid}.age").exists()
    for p in office.vault_dir.rglob("*"):
        if p.is_file():
            for m in MARKERS.values():
                assert m.encode() not in p.read_bytes(), (p, m)


def test_bad_submissions_are_one_line_errors(office, tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("x")
    res = office.run("intake", "submit", str(f), "--for", "E-1999-999999", "--category", "feedback",
                     "--source", "s", "--date", "2026-01-01", ok=False)
    assert res.exit_code == 1 and "no dossier numbered" in res.stderr
    res = office.run("intake", "submit", str(f), "--for", office.number, "--category", "gossip",
                     "--source", "s", "--date", "2026-01-01", ok=False)
    assert res.exit_code == 1 and "unknown category" in res.stderr
    res = office.run("intake", "accept", "0" * 32, who="bob", ok=False)
    assert res.exit_code == 1 and "no intake submission" in res.stderr


def test_tampered_submission_is_refused(office, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("t" * 1000)
    sid = _submit(office, f)
    p = office.vault_dir / "intake" / f"{sid}.age"
    raw = bytearray(p.read_bytes())
    raw[-3] ^= 1
    p.write_bytes(bytes(raw))
    res = office.run("intake", "accept", sid, who="bob", ok=False)
    assert res.exit_code == 1 and "does not match its record" in res.stderr
    assert Vault.open(office.vault_dir) and office.json("doc", "list", office.number, who="bob") == []


@pytest.mark.parametrize("date, why", [("2999-12-31", "in the future"), ("1850-06-01", "before 1900")])
def test_accept_refuses_a_date_in_the_future_or_before_1900_unless_forced(office, tmp_path, date, why):
    # Whoever submits chooses the date (any writer of intake/ can); the archivist's accept checks it
    # as the vault checks a member's own dates.
    f = tmp_path / "old.txt"
    f.write_text("old")
    sid = office.json("intake", "submit", str(f), "--for", office.number, "--category", "feedback", "--source", "s",
                      "--date", date, "--force-date")["ids"][0]
    res = office.run("intake", "accept", sid, who="bob", ok=False)
    assert res.exit_code == 1
    assert f"intake submission {sid} is dated {date}, {why}" in res.stderr.splitlines()[0]
    assert "--force-date" in res.stderr
    assert office.json("doc", "list", office.number, who="bob") == []
    assert [r["id"] for r in office.json("intake", "list", who="bob")] == [sid]  # still pending, to reject or force
    docno = office.json("intake", "accept", sid, "--force-date", who="bob")["number"]
    assert office.json("doc", "list", office.number, who="bob")[0]["number"] == docno
