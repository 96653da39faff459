"""Consultation requests by customer name [R-3.4.1]: sealed name, head approves, the archivist's grant resolves it."""

from __future__ import annotations

import json

import pytest

from office import SALES_DESK

CO = "杭州标记科技有限公司"


pytestmark = pytest.mark.office(*SALES_DESK, ("devhead", "dept-head", "dev"))


@pytest.fixture
def office(office):
    o = office
    o.n = {"co": o.create(name=CO, alias="Hangzhou Biaoji Technology"),
           "nw": o.create(name="Northwind Networks Ltd"),
           "nw2": o.create(name="Northwind Networks Ltd Shanghai Branch"),
           "nt": o.create(name="Northwind Trading")}
    return o


def _request(office, name: str) -> str:
    no = office.json("request", "access", "--customer", name, "--purpose", "contract renewal", who="staff")["number"]
    office.run("request", "approve", no, who="head")
    return no


def test_staff_who_cannot_search_request_by_name_and_the_grant_names_the_dossier(office):
    assert office.run("find", "标记科技", who="staff", ok=False).exit_code == 1
    no = office.json("request", "access", "--customer", "标记科技", "--purpose", "contract renewal",
                     who="staff")["number"]
    raw = (office.vault_dir / "requests" / f"{no}.toml").read_bytes()
    assert "标记".encode() not in raw and b"target = \"\"" in raw
    assert "(customer name)" in office.run("request", "list", who="staff").stdout
    # Sealed to the archive and the requester's department heads: not to another department's head.
    assert office.json("request", "show", no, "--customer", who="head")["customer"] == "标记科技"
    assert office.json("request", "show", no, "--customer", who="bob")["customer"] == "标记科技"
    res = office.run("request", "show", no, "--customer", who="devhead", ok=False)
    assert res.exit_code == 1 and "sealed to the archive and the department heads" in res.stderr
    office.run("request", "approve", no, who="head")
    gno = office.json("grant", no, who="bob")["number"]
    grant = next(g for g in office.json("grant", "list", who="bob") if g["number"] == gno)
    assert grant["target"] == office.n["co"]
    st = office.json("request", "show", no, who="staff")
    assert st["target"] == office.n["co"] and st["state"] == "granted" and st["resolved_by"] == "bob"
    assert office.json("dossier", "show", office.n["co"], who="staff")["profile"]["name"] == CO
    log = office.json("audit", "log", who="alice")
    assert any(e["action"] == "grant.create" and e.get("number") == office.n["co"] for e in log)
    text = json.dumps(log, ensure_ascii=False) + "".join(
        p.read_text(errors="replace") for p in (office.vault_dir / "requests").iterdir()) + "".join(
        p.read_text(errors="replace") for p in (office.vault_dir / "grants").iterdir())
    assert "标记" not in text and "Biaoji" not in text


def test_a_recorded_other_name_resolves_too(office):
    no = _request(office, "hangzhou biaoji")
    office.run("grant", no, who="bob")
    assert office.json("request", "show", no, who="bob")["target"] == office.n["co"]


def test_several_candidates_are_refused_with_a_reason_then_chosen(office):
    no = _request(office, "northwind")
    res = office.run("grant", no, who="bob", ok=False)
    assert res.exit_code == 1 and "3 dossiers match the customer name given in" in res.stderr
    assert all(office.n[k] in res.stderr for k in ("nw", "nw2", "nt")) and "--number" in res.stderr
    bad = office.run("grant", no, "--number", office.n["co"], who="bob", ok=False)
    assert bad.exit_code == 1 and "is not a dossier whose name matches" in bad.stderr
    assert office.json("request", "show", no, who="bob")["state"] == "approved"  # nothing was granted
    office.run("grant", no, "--number", office.n["nt"], who="bob")
    assert office.json("request", "show", no, who="bob")["target"] == office.n["nt"]
    log = office.json("audit", "log", who="alice")
    assert any(e["action"] == "grant.create" and e["outcome"] == "refused" for e in log)


def test_the_exact_name_wins_over_longer_ones_and_no_match_is_refused(office):
    no = _request(office, "NORTHWIND NETWORKS LTD")
    office.run("grant", no, who="bob")
    assert office.json("request", "show", no, who="bob")["target"] == office.n["nw"]
    none = _request(office, "Southwind Holdings")
    res = office.run("grant", none, who="bob", ok=False)
    assert res.exit_code == 1 and "no dossier matches the customer name" in res.stderr and "deny" in res.stderr


def test_a_resolution_written_by_someone_who_may_not_grant_counts_for_nothing(office):
    from backup_helpers import actor
    from vault.store import records

    no = _request(office, "northwind trading")
    staff = actor(office, "staff")
    import hashlib

    req = records.load_toml(office.vault_dir / "requests" / f"{no}.toml")
    forged = staff.sign({"format": 1, "request": no, "request_sha256": hashlib.sha256(records.canonical(req)).hexdigest(),
                         "dossier": "0" * 32, "number": office.n["co"], "by": "staff", "at": "2026-01-01T00:00:00Z"})
    records.write_toml(office.vault_dir / "requests" / f"{no}.resolution.toml", forged)
    # No history entry names it, so it resolves nothing: the grant resolves the name itself, and its
    # own entry commits the resolution (replacing the forged file).
    problems = json.loads(office.run("check", "--json", ok=False).stdout)["problems"]
    assert any(p.startswith(f"requests/{no}.resolution.toml: no history entry names") for p in problems), problems
    gno = office.json("grant", no, who="bob")["number"]
    grant = next(g for g in office.json("grant", "list", who="bob") if g["number"] == gno)
    assert grant["target"] == office.n["nt"] and grant["dossier"] != "0" * 32
    assert office.json("check")["ok"]
