"""Dossier maintenance: profile versions, find follows them, and an operator who reads nothing [R-3.5.2, R-2.3]."""

from __future__ import annotations

import pytest

from office import MARKERS, PASSPHRASE
from vault.store import identity
from vault.crypto import age
from vault.errors import NoIdentityMatchError


pytestmark = pytest.mark.office(("lia", "liaison", "sales"), ("lee", "liaison", "dev"), ("head", "dept-head", "sales"),
                                ("audrey", "auditor", "audit"), ("olga", "operator", "tech"),
                                dossier={"name": MARKERS["name"], "address": "1 Old Street", "contact": MARKERS["contact"]})


def test_address_change_is_a_new_version_and_find_follows(office):
    assert office.json("dossier", "update", office.number, "--address", MARKERS["address"],
                       "--contact", MARKERS["phone"], who="bob")["version"] == 2
    assert office.json("dossier", "show", office.number, who="bob")["profile"]["address"] == MARKERS["address"]
    assert office.json("find", "--contact", MARKERS["phone"], who="bob")[0]["number"] == office.number
    assert office.run("find", "--contact", MARKERS["contact"], who="bob", ok=False).exit_code == 1  # old value gone
    reader = office.json("dossier", "history", office.number, who="bob")
    assert [r["values"]["address"] for r in reader] == ["1 Old Street", MARKERS["address"]]
    assert reader[1]["fields"] == ["address", "contact"]
    auditor = office.json("dossier", "history", office.number, who="audrey")
    assert [r["fields"] for r in auditor] == [reader[0]["fields"], ["address", "contact"]]
    assert all("values" not in r for r in auditor)
    text = office.run("dossier", "history", office.number, who="audrey").stdout
    assert MARKERS["address"] not in text and "1 Old Street" not in text
    assert office.json("check", "--read-data", who="alice")["ok"] and office.json("audit", "verify")["ok"]


def test_business_change_reclassifies(office):
    office.run("dossier", "update", office.number, "--business", "software-development", who="bob")
    shown = office.json("dossier", "show", office.number, who="bob")
    assert shown["business"] == "software-development" and shown["class"].startswith("enterprise/software-development/")


def test_liaison_updates_own_department_through_a_grant(office):
    res = office.run("dossier", "update", office.number, "--note", "moved", who="lee", ok=False)
    assert res.exit_code == 1 and "may not update" in res.stderr
    res = office.run("dossier", "update", office.number, "--note", "moved", who="lia", ok=False)
    assert res.exit_code == 1 and "no active grant" in res.stderr
    req = office.json("request", "access", office.number, "--purpose", "update contacts", who="lia")["number"]
    office.run("request", "approve", req, who="head")
    office.run("grant", req, who="bob")
    assert office.json("dossier", "update", office.number, "--note", "moved offices", who="lia")["version"] == 2
    assert office.json("dossier", "show", office.number, who="bob")["profile"]["notes"] == "moved offices"


def test_nothing_to_update_is_refused(office):
    res = office.run("dossier", "update", office.number, who="bob", ok=False)
    assert res.exit_code == 1 and "nothing to update" in res.stderr
    res = office.run("dossier", "update", office.number, "--address", "1 Old Street", who="bob", ok=False)
    assert res.exit_code == 1 and "nothing changed" in res.stderr


def test_operator_maintains_but_decrypts_nothing(office, tmp_path):
    f = tmp_path / "d.txt"
    f.write_text(MARKERS["content"])
    doc = office.add_doc(office.number, f)
    assert office.json("check", who="olga")["ok"]
    assert office.json("audit", "verify", who="olga")["ok"]
    assert office.json("grant", "sweep", who="olga")["swept"] == []
    assert office.json("audit", "log", who="olga")
    res = office.run("doc", "view", doc, who="olga", ok=False)
    assert res.exit_code == 1
    ident = identity.load_identity(office.ident("olga"), PASSPHRASE).age_identity()
    files = [p for p in office.vault_dir.rglob("*.age")]
    assert len(files) >= 5
    for p in files:
        with pytest.raises(NoIdentityMatchError):
            age.decrypt_bytes(p.read_bytes(), [ident])
