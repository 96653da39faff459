"""The register: the archive department's archive-wide list of dossiers [R-3.2.2], names only where allowed."""

from __future__ import annotations

import csv
import io
import json
import tomllib

import pytest

from office import MARKERS
from vault.store.records import dump_toml


pytestmark = pytest.mark.office(("staff", "staff", "sales"), ("backup", "backup", "it"),
                                dossier={"name": MARKERS["name"]}, now="2026-03-02T10:00:00")


@pytest.fixture
def office(office):
    """Three documents, an individual's dossier and, two months later, a third dossier."""
    o, text = office, MARKERS["content"]
    o.contract = o.add_text(o.number, text, "bob", "contract", "--original", "--paper-location", "=HYPERLINK(\"x\")")
    o.letter = o.add_text(o.number, text, "bob", "communication", "--original", "--paper-location", "Room 1/Shelf A")
    o.scan = o.add_text(o.number, text, "bob", "feedback", "--copy", "--copy-note", "fax only")
    o.person = o.create(ctype="individual", dept="support", business="software-development", name="=1+2 Li Wei")
    office.at("2026-05-10T10:00:00")
    o.third = o.create(name="Third Customer Ltd", dept="sales")
    return o


def _rows(office, *args, who="bob") -> dict:
    return json.loads(office.run("register", *args, "--json", who=who).stdout)


def _audit(office, who: str) -> list[dict]:
    return [e for e in office.json("audit", "log", "--member", who, who="alice") if e["action"] == "register"]


# -- the attacker first ---------------------------------------------------------------------------

def test_a_member_outside_the_archive_department_sees_no_customer_name(office):
    """[R-1.3.3, R-3.2.2] Staff may list cleartext facts, as 'dossier list' shows them; never a name."""
    for args in ((), ("--csv",), ("--json",)):
        res = office.run("register", *args, who="staff")
        assert office.number in res.stdout and MARKERS["name"] not in res.stdout and "Li Wei" not in res.stdout
    data = _rows(office, who="staff")
    assert data["names"] is False and {r["customer"] for r in data["rows"]} == {None}
    assert [e.get("ref") for e in _audit(office, "staff")] == [None, None, None, None]


def test_a_role_without_the_listing_right_is_refused_and_logged(office):
    res = office.run("register", who="backup", ok=False)
    lines = res.stderr.strip().splitlines()
    assert res.exit_code != 0 and len(lines) == 2 and "may not dossier.list" in lines[0]
    assert lines[1].startswith("vault: hint: ") and office.number not in res.stdout
    assert [(e["outcome"]) for e in office.json("audit", "log", "--member", "backup", who="alice")
            if e["action"] == "dossier.list"] == ["refused"]


def test_names_leave_for_a_file_only_with_doc_save(office, tmp_path):
    """[R-3.4.2] A name written anywhere but a terminal is a copy: a reader without doc.save sees
    names on a terminal only (the test's output is a pipe)."""
    pol = tomllib.loads(office.run("policy", "show", who="alice").stdout)
    pol["roles"]["archivist"]["may"].remove("doc.save")
    new = tmp_path / "policy.toml"
    new.write_bytes(dump_toml(pol))
    office.run("policy", "update", str(new), who="alice")
    data = _rows(office, who="bob")
    assert data["names"] is False and MARKERS["name"] not in json.dumps(data)
    assert MARKERS["name"] in json.dumps(_rows(office, who="alice"))  # the supervisor keeps doc.save


def test_csv_cells_a_spreadsheet_would_run_are_defused(office):
    """A paper location or a customer name that looks like a formula is written as text (OWASP)."""
    res = office.run("register", "--csv", who="bob")
    rows = list(csv.DictReader(io.StringIO(res.stdout.lstrip("\ufeff"))))
    by_no = {r["number"]: r for r in rows}
    assert by_no[office.number]["paper_locations"] == "'=HYPERLINK(\"x\"); Room 1/Shelf A"
    assert by_no[office.person]["customer"] == "'=1+2 Li Wei"
    assert not any(c.startswith(("=", "+", "-", "@")) for r in rows for c in r.values())


# -- what the archive department gets -------------------------------------------------------------

def test_the_register_lists_every_dossier_with_its_facts(office):
    """[R-3.2.2] Number, customer, class, type, dates, counts, paper locations; one audit entry per listing."""
    data = _rows(office)
    assert data["format"] == "vault-register-1" and data["names"] is True
    rows = {r["number"]: r for r in data["rows"]}
    assert [r["number"] for r in data["rows"]] == sorted(rows)
    r = rows[office.number]
    assert r["customer"] == MARKERS["name"] and r["customer_type"] == "enterprise" and r["dept"] == "sales"
    assert (r["opened"], r["closed"], r["status"]) == ("2026-03-02", None, "open")
    assert (r["documents"], r["current_documents"], r["destroyed_documents"], r["originals"]) == (3, 3, 0, 2)
    assert r["paper_locations"] == ["=HYPERLINK(\"x\")", "Room 1/Shelf A"]
    assert r["retention"] == "waiting" and r["retention_end"] is None  # the contract is not fulfilled yet
    assert rows[office.person]["customer"] == "=1+2 Li Wei" and rows[office.person]["class"].startswith("individual")
    assert [e.get("ref") for e in _audit(office, "bob")] == ["doc.save"]  # names went to a pipe: a copy
    text = office.run("register", who="bob").stdout
    assert text.splitlines()[0].split()[:3] == ["number", "customer", "class"] and "Room 1/Shelf A" in text


def test_destroyed_documents_and_dossiers_are_left_out_unless_asked(office):
    """[R-3.3.2] Counts leave out destroyed documents; a destroyed dossier is listed only on request."""
    office.run("destroy", "request", office.scan, "--reason", "duplicate", who="bob")
    office.run("destroy", "approve", "D-000001", "--override-retention", "duplicate scan", who="alice")
    office.run("destroy", "execute", "D-000001", who="alice")
    office.run("dossier", "close", office.third, "--date", "2026-05-10", who="bob")
    office.run("destroy", "request", office.third, "--reason", "never used", who="bob")
    office.run("destroy", "approve", "D-000002", "--override-retention", "opened by mistake", who="alice")
    office.run("destroy", "execute", "D-000002", who="alice")
    rows = {r["number"]: r for r in _rows(office)["rows"]}
    assert office.third not in rows
    assert (rows[office.number]["documents"], rows[office.number]["destroyed_documents"]) == (2, 1)
    rows = {r["number"]: r for r in _rows(office, "--include-destroyed")["rows"]}
    assert rows[office.third]["status"] == "destroyed" and rows[office.third]["customer"] is None
    assert [r["number"] for r in _rows(office, "--status", "destroyed")["rows"]] == [office.third]


def test_filters(office):
    office.run("dossier", "close", office.person, "--date", "2026-04-01", who="bob")

    def numbers(*args):
        return [r["number"] for r in _rows(office, *args)["rows"]]

    assert numbers("--type", "individual") == [office.person]
    assert numbers("--dept", "sales") == sorted([office.number, office.third])
    assert numbers("--status", "closed") == [office.person]
    assert numbers("--status", "open") == sorted([office.number, office.third])
    assert numbers("--class", "individual") == [office.person]
    assert numbers("--class", "indiv") == []  # whole path segments, not string prefixes
    assert numbers("--opened-from", "2026-05-01") == [office.third]
    assert numbers("--opened-to", "2026-03-31") == sorted([office.number, office.person])
    assert numbers("--closed-from", "2026-03-01", "--closed-to", "2026-04-30") == [office.person]
    ends = {r["number"]: r["retention_end"] for r in _rows(office)["rows"]}
    assert ends[office.person] is None or ends[office.person] >= "2031-04-01"
    res = office.run("register", "--opened-from", "2026-13-01", who="bob", ok=False)
    assert res.exit_code != 0 and "Traceback" not in res.output and res.stderr.startswith("vault: error: ")


def test_csv_has_a_byte_order_mark_unless_asked_not_to(office):
    with_bom = office.run("register", "--csv", who="bob").stdout_bytes.decode()
    without = office.run("register", "--csv", "--no-bom", who="bob").stdout_bytes.decode()
    assert with_bom.startswith("\ufeffnumber,customer,class,") and without.startswith("number,customer,class,")
    assert without.count("\r\n") == 4 and "\n" not in without.replace("\r\n", "") and with_bom[1:] == without
    assert office.run("register", "--no-bom", who="bob", ok=False).exit_code == 2
