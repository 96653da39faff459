"""End to end: an archive office plays the procedure through the CLI [R-2.1, R-2.2, R-3.1, R-3.2]."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from office import MARKERS
from vault.store import identity
from vault.crypto import age
from vault.errors import NoIdentityMatchError, PermissionDeniedError
from vault.store.keytable import read_key_table
from vault.archive.vault import Vault

CATEGORIES = ["basic-info", "contract", "service-record", "communication", "feedback", "other"]


pytestmark = pytest.mark.office(("cara", "archivist", "archive"),
                                *((f"{role}-{dept}", "dept-head" if role == "head" else role, dept)
                                  for dept in ("sales", "dev") for role in ("head", "liaison", "staff")),
                                ("audrey", "auditor", "audit"))


def _doc_hashes(vault_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(vault_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (vault_dir / "dossiers").rglob("*.age")}


def _populate(office, tmp_path) -> dict[str, list[str]]:
    """A dozen dossiers of both types, a document of every category each, one versioned contract."""
    made: dict[str, list[str]] = {}
    for i in range(12):
        ctype = "enterprise" if i % 2 == 0 else "individual"
        dept = "sales" if i % 3 else "dev"
        fields = {"name": f"Customer {i}", "contact": f"c{i}@example.org"}
        if i == 0:
            fields = {"name": MARKERS["name"], "address": MARKERS["address"], "contact": MARKERS["contact"],
                      "legal_rep": MARKERS["legal_rep"]}
        no = office.create(who="bob" if i % 2 else "cara", ctype=ctype, dept=dept,
                           business="software-development" if i % 4 == 1 else "network-services", **fields)
        made[no] = []
        for cat in CATEGORIES:
            f = tmp_path / f"{no}-{cat}.txt"
            f.write_text(f"{MARKERS['content']} {cat} of dossier {i}\n")
            made[no].append(office.json("doc", "add", no, str(f), "--category", cat, "--source",
                                        MARKERS["source"], "--date", "2026-02-03", "--copy", "--copy-note",
                                        "original kept by customer", "--title", MARKERS["title"],
                                        who="bob")["number"])
    return made


def test_office_plays_the_procedure(office, tmp_path):
    made = _populate(office, tmp_path)
    numbers = list(made)
    assert len(set(numbers)) == 12  # unique archive numbers
    assert all(n.startswith(("E-", "I-")) for n in numbers)
    listing = office.json("dossier", "list", who="staff-sales")
    assert {d["number"] for d in listing} == set(numbers)
    classes = {d["class"] for d in listing}  # classification by type, business, time
    assert "enterprise/network-services/2026" in classes and "individual/software-development/2026" in classes

    first = numbers[0]
    shown = office.json("dossier", "show", first, who="bob")
    assert shown["profile"]["name"] == MARKERS["name"]
    assert "profile" not in office.json("dossier", "show", first, who="staff-sales")

    docs = office.json("doc", "list", first, who="cara")
    assert [d["category"] for d in docs] == CATEGORIES and all(d["title"] == MARKERS["title"] for d in docs)
    assert all(d["original"] is False for d in docs)

    # A new version never overwrites the old one.
    contract = made[first][1]
    v2 = tmp_path / "v2.txt"
    v2.write_text("amended contract\n")
    new = office.json("doc", "add", first, str(v2), "--category", "contract", "--source", "sales desk",
                      "--date", "2026-05-01", "--original", "--replaces", contract, who="bob")["number"]
    hist = office.json("doc", "history", new, who="bob")
    assert [h["number"] for h in hist] == [contract, new] and [h["version"] for h in hist] == [1, 2]
    assert office.run("doc", "view", contract, who="bob").stdout.startswith(MARKERS["content"])
    assert office.run("doc", "view", new, who="bob").stdout == "amended contract\n"
    refused = office.run("doc", "add", first, str(v2), "--category", "contract", "--source", "s", "--date",
                         "2026-05-02", "--original", "--replaces", contract, who="bob", ok=False)
    assert refused.exit_code == 1 and "already replaced" in refused.stderr

    # find by blind index: name, contact, number.
    assert [d["number"] for d in office.json("find", "--name", MARKERS["name"].upper(), who="bob")] == [first]
    assert [d["number"] for d in office.json("find", "--contact", MARKERS["contact"], who="cara")] == [first]
    assert [d["number"] for d in office.json("find", "--number", numbers[3], who="staff-dev")] == [numbers[3]]
    assert office.run("find", "--name", "Nobody At All", who="bob", ok=False).exit_code == 1

    out = tmp_path / "out.bin"
    office.run("doc", "view", made[numbers[5]][0], "--output", str(out), who="cara")
    assert out.read_text().startswith(MARKERS["content"]) and out.stat().st_mode & 0o077 == 0

    rep = office.json("check", who="audrey")
    assert rep["ok"] and rep["dossiers"] == 12 and rep["documents"] == 12 * 6 + 1
    assert office.json("check", "--read-data", who="bob")["ok"]


def test_no_customer_data_in_clear_under_the_vault(office, tmp_path):
    _populate(office, tmp_path)
    needles = [m.encode() for m in MARKERS.values()] + [m.lower().encode() for m in MARKERS.values()]
    for p in office.vault_dir.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for n in needles:
                assert n not in data, f"{n!r} in clear in {p}"


def test_outsiders_cannot_decrypt_even_with_the_library(office, tmp_path):
    made = _populate(office, tmp_path)
    v = Vault.open(office.vault_dir)
    for who in ("staff-sales", "head-sales", "liaison-dev", "audrey"):
        ident = identity.load_identity(office.ident(who), "correct horse battery staple")
        assert office.run("doc", "view", made[next(iter(made))][0], who=who, ok=False).exit_code == 1
        for no in made:
            from vault.archive.manifests import resolve

            kt = v.layout.key_table(resolve(v, no))
            with pytest.raises(NoIdentityMatchError):
                age.decrypt_bytes(kt.read_bytes(), [ident.age_identity()])
        with pytest.raises(NoIdentityMatchError):
            age.decrypt_bytes(v.layout.ring_secret("archive").read_bytes(), [ident.age_identity()])


def test_removing_a_member_rewraps_key_tables_only(office, tmp_path):
    made = _populate(office, tmp_path)
    before = _doc_hashes(office.vault_dir)
    kt_before = {p.name: p.read_bytes() for p in (office.vault_dir / "keys").glob("*.age")}
    cara = identity.load_identity(office.ident("cara"), "correct horse battery staple")
    v = Vault.open(office.vault_dir)
    old_ring = v.act_as(cara).read_identities()[0]  # what cara could have kept

    res = office.json("member", "remove", "cara", who="alice")
    assert len(res["rewrapped"]) == 14  # 12 dossiers + the index key + the intake key
    assert _doc_hashes(office.vault_dir) == before  # no document ciphertext rewritten
    for p in (office.vault_dir / "keys").glob("*.age"):
        assert p.read_bytes() != kt_before[p.name]
        with pytest.raises(NoIdentityMatchError):  # even the old ring identity opens nothing now
            age.decrypt_bytes(p.read_bytes(), [old_ring, cara.age_identity()])
    res = office.run("doc", "list", next(iter(made)), who="cara", ok=False)
    assert res.exit_code == 1 and "removed" in res.stderr
    assert office.run("doc", "view", made[next(iter(made))][0], who="bob").stdout.startswith(MARKERS["content"])
    assert office.json("check", "--read-data", who="alice")["ok"]
    with pytest.raises(PermissionDeniedError):
        read_key_table(v.layout.key_table(next(p.stem for p in (office.vault_dir / "keys").glob("[0-9a-f]*.age"))),
                       [old_ring], dossier="x")


def test_member_management_is_for_supervisors(office):
    office.keygen("mallory")
    res = office.run("member", "add", "mallory", "--key", office.keys["mallory"], "--role", "archivist",
                     "--dept", "archive", who="bob", ok=False)
    assert res.exit_code == 1 and "may not member.manage" in res.stderr
    assert "mallory" not in {m["name"] for m in office.json("member", "list")}
