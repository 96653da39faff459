"""Paper originals: locations, loans only against an approved consultation, returns, overdue, inventories [R-3.2.3, R-3.4.2]."""

from __future__ import annotations


import datetime as dt

import pytest

from office import MARKERS, SALES_DESK, SAM
from vault.archive import audit, authority
from vault.office import paper
from vault.store import records


pytestmark = pytest.mark.office(*SALES_DESK, dossier={"name": MARKERS["name"]}, now="2026-03-02T10:00:00")


@pytest.fixture
def office(office):
    """A contract kept on paper, an original letter and a faxed copy."""
    text = MARKERS["content"]
    office.contract = office.add_text(office.number, text, "bob", "contract", "--original",
                                      "--paper-location", "Room 1/Shelf A")
    office.letter = office.add_text(office.number, text, "bob", "communication", "--original")
    office.scan = office.add_text(office.number, text, "bob", "feedback", "--copy", "--copy-note", "fax only")
    return office


def _approved_access(office, who="staff") -> str:
    req = office.json("request", "access", office.number, "--purpose", "meeting", who=who)["number"]
    office.run("request", "approve", req, who="head")
    return req


def test_an_original_leaves_only_against_an_approved_consultation(office):
    """[R-3.4.2] Archives are not taken out of the archive room without authorisation."""
    req = office.json("request", "access", office.number, "--purpose", "meeting", who="staff")["number"]
    lend = ("paper", "lend", office.contract, "--to", "staff", "--request", req, "--due", "2026-03-09")
    res = office.run(*lend, who="bob", ok=False)  # pending, not approved
    assert res.exit_code == 1 and "not an approved consultation request" in res.stderr
    office.run("request", "approve", req, who="head")
    res = office.run(*lend, who="staff", ok=False)  # the borrower does not lend to themselves
    assert res.exit_code == 1 and "may not grant.manage" in res.stderr
    res = office.run("paper", "lend", office.contract, "--to", "head", "--request", req, "--due", "2026-03-09",
                     who="bob", ok=False)  # someone else's approval lends nothing
    assert res.exit_code == 1
    res = office.run("paper", "lend", office.scan, "--to", "staff", "--request", req, "--due", "2026-03-09",
                     who="bob", ok=False)
    assert res.exit_code == 1 and "is a copy" in res.stderr
    res = office.run("paper", "lend", office.contract, "--to", "staff", "--request", req, "--due", "2026-09-09",
                     who="bob", ok=False)
    assert res.exit_code == 1 and "90 days" in res.stderr
    loan = office.json(*lend, who="bob")["number"]
    assert office.run(*lend, who="bob", ok=False).exit_code == 1  # already out
    (row,) = office.json("paper", "out", who="head")
    assert (row["number"], row["document"], row["borrower"], row["due"], row["overdue"]) == \
        (loan, office.contract, "staff", "2026-03-09", False)
    assert office.json("paper", "out", "--overdue", who="bob") == []
    office.at("2026-03-10T10:00:00")
    assert [r["number"] for r in office.json("paper", "out", "--overdue", who="bob")] == [loan]
    assert "OVERDUE" in office.run("paper", "out", who="bob").stdout
    back = office.json("paper", "return", loan, who="bob")
    assert (back["location"], back["received_by"]) == ("Room 1/Shelf A", "bob")
    assert office.json("paper", "out", who="bob") == []
    assert office.run("paper", "return", loan, who="bob", ok=False).exit_code == 1
    actions = [(e["action"], e.get("ref")) for e in office.json("audit", "log", "--dossier", office.number, who="alice")]
    assert ("paper.lend", loan) in actions and ("paper.return", loan) in actions
    assert office.json("check", who="bob")["ok"] and office.json("audit", "verify")["ok"]


def test_a_return_elsewhere_moves_the_recorded_location(office):
    req = _approved_access(office)
    office.run("paper", "locate", office.letter, "--location", "Room 2/Box 7", who="bob")
    loan = office.json("paper", "lend", office.letter, "--to", "staff", "--request", req, "--due", "2026-03-05",
                       who="bob")["number"]
    office.run("paper", "return", loan, "--location", "Room 3/Box 1", who="bob")
    docs = {d["number"]: d for d in office.json("doc", "list", office.number, who="bob")}
    assert docs[office.letter]["paper_location"] == "Room 3/Box 1"
    assert office.run("paper", "locate", office.scan, "--location", "x", who="bob", ok=False).exit_code == 1


def test_inventory_records_what_was_found_and_reports_the_missing(office, tmp_path):
    """[R-3.2.3] A periodic inventory: found, misplaced, missing, out on loan, unknown."""
    req = _approved_access(office)
    office.run("paper", "locate", office.letter, "--location", "Room 2/Box 7", who="bob")
    other = office.create(name="Other Customer")
    f = tmp_path / "o.txt"
    f.write_text("x")
    lost = office.add_doc(other, f, "bob", "basic-info", "--original", "--paper-location", "Room 1/Shelf B")
    office.run("paper", "lend", office.letter, "--to", "staff", "--request", req, "--due", "2026-03-05", who="bob")
    listing = tmp_path / "found.txt"
    listing.write_text(f"{office.contract}=Room 1/Shelf C\nE-1999-000001/0001=Room 9\n")
    res = office.run("paper", "inventory", "--found", f"{office.scan}=Room 4", who="staff", ok=False)
    assert res.exit_code == 1
    rep = office.json("paper", "inventory", "--from-file", str(listing), who="bob")
    assert rep["missing"] == [lost] and rep["out"] == [office.letter]
    assert rep["misplaced"] == [{"document": office.contract, "location": "Room 1/Shelf C", "recorded": "Room 1/Shelf A"}]
    assert rep["unknown"] == ["E-1999-000001/0001"]
    text = office.run("paper", "inventory", "--found", f"{lost}=Room 1/Shelf B", who="bob").stdout
    assert f"missing    {office.contract}" in text and f"missing    {lost}" not in text
    assert office.run("paper", "inventory", "--found", "no-equals-sign", who="bob", ok=False).exit_code == 1
    assert office.json("check", who="bob")["ok"]


def test_a_loan_written_behind_the_vaults_back_is_named(office):
    """Someone who can write the vault directory cannot record a loan with a staff signature."""
    from office import PASSPHRASE
    from vault.store import identity, records

    req = _approved_access(office)
    loan = office.json("paper", "lend", office.contract, "--to", "staff", "--request", req, "--due", "2026-03-05",
                       who="bob")["number"]
    staff = office.open().act_as(identity.load_identity(office.ident("staff"), PASSPHRASE))
    p = office.vault_dir / "paper" / "loans" / f"{loan}.returned.toml"
    records.write_toml(p, staff.sign({"format": 1, "loan": loan, "document": office.contract,
                                      "at": office.clock.stamp(), "by": "staff", "location": "home"}))
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and f"paper/loans/{loan}.returned.toml: no history entry names this record" in res.stdout


def test_the_loan_limit_is_the_documented_one():
    from pathlib import Path

    from vault.office import paper

    doc = (Path(__file__).resolve().parents[1] / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    assert "(a date at most 90 ✓" in doc and paper.MAX_LOAN_DAYS == 90


def test_locations_are_one_line_and_inventory_lists_come_from_outside_the_vault(office):
    """A location is shown in tables: a newline in it could forge a line of `paper out`."""
    res = office.run("paper", "locate", office.contract, "--location", "Room 1\nL-000009  forged", who="bob", ok=False)
    assert res.exit_code == 1 and "one line" in res.stderr
    res = office.run("paper", "inventory", "--from-file", str(office.vault_dir / "audit" / "log.jsonl"), who="bob",
                     ok=False)
    assert res.exit_code == 1 and "inside the vault" in res.stderr


def _commit_loan(office, request: str, *, to: str = "staff", document: str | None = None, due: str = "2026-03-09") -> str:
    """bob, an archivist, with his own key and the library, records a loan of ``document`` (the
    contract) from the office's dossier to ``to`` against ``request``, as ``paper lend`` would
    write it but without its checks. Returns the loan's path."""
    bob = office.actor("bob")
    dossier = authority.state(bob.vault)["numbers"][office.number]
    no = "L-000099"
    rec = bob.sign({"format": 1, "number": no, "document": document or office.contract, "dossier": dossier,
                    "borrower": to, "request": request, "from_location": "Room 1/Shelf A",
                    "at": office.clock.stamp(), "by": "bob", "due": due})
    (office.vault_dir / "paper" / "loans").mkdir(parents=True, exist_ok=True)
    audit.commit(bob, "paper.lend", {f"paper/loans/{no}.toml": records.dump_toml(rec)}, number=office.contract,
                 ref=no, obj=dossier)
    return f"paper/loans/{no}.toml"


@pytest.mark.parametrize("case", ["pending", "approved-after", "another-borrower", "another-dossier",
                                  "removed-borrower", "document-of-another-dossier"])
def test_a_loan_the_rules_did_not_allow_is_named(office, case):
    """[R-3.4.2] An archivist who writes a loan with the library, skipping ``paper lend``'s checks,
    cannot make the vault say an original left against an approval it did not have: a request still
    pending, approved only after the loan, of another member or for another dossier, a borrower
    removed before the loan, a document of another dossier. ``paper out`` refuses the loan in one
    line and ``vault check`` names it."""
    other = office.create(name="Other Customer Ltd")
    req = office.json("request", "access", other if case == "another-dossier" else office.number,
                      "--purpose", "meeting", who="staff")["number"]
    document = None
    if case == "document-of-another-dossier":
        document = office.add_text(other, "x", "bob", "contract", "--original")
    if case not in ("pending", "approved-after"):
        office.run("request", "approve", req, who="head")
    if case == "removed-borrower":
        office.run("member", "remove", "staff", who="alice")
    rel = _commit_loan(office, req, to="head" if case == "another-borrower" else "staff", document=document)
    if case == "approved-after":
        office.run("request", "approve", req, who="head")
    res = office.run("paper", "out", who="bob", ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output and rel in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) <= 2, res.stderr  # the error and, at most, a hint
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and rel in res.stdout, res.stdout


@pytest.mark.parametrize("due", ["2036-03-09", "2026-02-01"], ids=["in-ten-years", "before-the-loan"])
def test_a_loan_due_beyond_what_lend_allows_is_named(office, due):
    """[R-3.4.2] ``paper lend`` sets a due date within 90 days. An archivist's loan written with the
    library, due in ten years (an original out with nothing overdue) or before it was lent, is
    refused by ``paper out`` in one line and named by ``vault check``; one due in 90 days is not."""
    req = office.json("request", "access", office.number, "--purpose", "meeting", who="staff")["number"]
    office.run("request", "approve", req, who="head")
    rel = _commit_loan(office, req, due=due)
    res = office.run("paper", "out", who="bob", ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output and f"{rel}: dated" in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 2, res.stderr
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and f"{rel}: dated" in res.stdout, res.stdout


def test_a_loan_due_on_the_last_day_lend_allows_counts(office):
    """The bound is the command's own: a loan ``paper lend`` writes due 90 days ahead is out, and
    ``vault check`` finds nothing."""
    req = office.json("request", "access", office.number, "--purpose", "meeting", who="staff")["number"]
    office.run("request", "approve", req, who="head")
    last = (office.clock.today_date() + dt.timedelta(days=paper.MAX_LOAN_DAYS)).isoformat()
    loan = office.json("paper", "lend", office.contract, "--to", "staff", "--request", req, "--due", last,
                       who="bob")["number"]
    assert [r["number"] for r in office.json("paper", "out", who="bob")] == [loan]
    office.run("check", who="bob")


@pytest.mark.office(SAM, *SALES_DESK, dossier={"name": MARKERS["name"]}, now="2026-03-02T10:00:00")
@pytest.mark.parametrize("whole", [True, False], ids=["dossier", "document"])
def test_an_original_out_when_it_is_destroyed_still_comes_back(office, whole):
    """Destruction shreds the keys, not the paper: an original out on loan when its document or
    dossier is destroyed is taken back all the same — a return the history counts, the ghost left
    as it is. (The return said "back at …" while its entry counted for nothing, and one to a new
    shelf rewrote the destroyed dossier's manifest: check named it and 'paper out' stopped.)"""
    doc = office.add_text(office.number, "x", "bob", "contract", "--original", "--paper-location", "Room 1")
    req = _approved_access(office)
    loans = []
    for _ in range(2):
        loan = office.json("paper", "lend", doc, "--to", "staff", "--request", req, "--due", "2026-03-09",
                           who="bob")["number"]
        loans.append(loan)
        if len(loans) == 1:
            office.run("paper", "return", loan, who="bob")
    no = office.json("destroy", "request", office.number if whole else doc, "--reason", "r", who="alice")["number"]
    office.run("destroy", "approve", no, "--override-retention", "court order", who="sam")
    office.run("destroy", "execute", no, who="alice")
    assert [r["number"] for r in office.json("paper", "out", who="bob")] == [loans[1]]
    back = office.json("paper", "return", loans[1], "--location", "Shredding bin", who="bob")
    assert back["location"] == "Shredding bin"
    assert office.json("paper", "out", who="bob") == []
    res = office.run("check", "--json", who="bob", ok=False)
    assert res.exit_code == 0, res.stdout
    ghost = next(d for d in office.json("doc", "list", office.number, who="bob") if d["number"] == doc)
    assert ghost.get("paper_location") is None
