"""Key files bound to the history: an older key table, index key or recipient put back is named, never used.

Played as someone who can write the vault directory — here a former archivist who kept copies of
the files and keys they could open while a member. Key tables, the index and intake keys, key
releases and the search index's files are history records (FORMAT §8, §11): the entry that writes
one names its hash, every reader refuses other bytes, and ``vault check`` without a key names them.
"""

from __future__ import annotations

import json

import pytest

from backup_helpers import actor
from office import MARKERS, make_office
from vault.archive import searchseal
from vault.archive.manifests import resolve
from vault.archive.vault import Vault
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, NoIdentityMatchError
from vault.store.searchdb import unpack


@pytest.fixture
def office(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    o = make_office(tmp_path / "o", monkeypatch)
    o.add_member("carl", "archivist", dept="archive")
    o.number = o.create(name="Binding Customer")
    o.file = tmp_path / "doc.txt"
    o.file.write_text(MARKERS["content"])
    o.first = o.add_doc(o.number, o.file)
    return o


def _problems(o) -> list[str]:
    res = o.run("check", "--json", ok=False)
    assert res.exit_code == 1
    return json.loads(res.stdout)["problems"]


def _opens(blob: bytes, identities) -> bytes | None:
    try:
        return age.decrypt_bytes(blob, identities)
    except (NoIdentityMatchError, FormatError, AuthenticationError):
        return None


def test_an_older_key_table_put_back_is_named_and_never_used(office):
    """Before, the next document added read the older table, appended its key and wrote it back:
    every document added since lost its key — crypto-shredded by a file edit — and a keyless check
    saw nothing."""
    v = Vault.open(office.vault_dir)
    table = office.vault_dir / "keys" / f"{resolve(v, office.number)}.age"
    old = table.read_bytes()
    second = office.add_doc(office.number, office.file)
    table.write_bytes(old)  # the attacker puts the older table back
    assert any(p.startswith(f"keys/{table.name}: rolled back") for p in _problems(office))
    res = office.run("doc", "add", office.number, str(office.file), "--category", "other", "--source", "desk",
                     "--date", "2026-01-01", "--original", who="bob", ok=False)
    assert res.exit_code == 1 and f"keys/{table.name}: does not match history entry" in res.stderr
    assert "Traceback" not in res.output
    res = office.run("doc", "view", second, who="bob", ok=False)
    assert res.exit_code == 1 and f"keys/{table.name}" in res.stderr
    # Nothing was lost: with the table the history names back, every document opens.
    table.write_bytes(office.saved[f"keys/{table.name}"])
    assert office.run("doc", "view", second, who="bob").stdout == MARKERS["content"]
    assert office.json("check", "--read-data", who="bob")["ok"]


@pytest.fixture(autouse=True)
def _keep(office, monkeypatch):
    """Keep the bytes of every key file as committed, so a test can put back the right one."""
    from vault.archive import audit

    office.saved = {}
    real = audit.commit_many

    def commit_many(actor, items, **kw):
        entries = real(actor, items, **kw)
        for entry in entries:
            for rel, h in entry.get("records", {}).items():
                p = actor.vault.root / rel
                if h is not None and p.exists():
                    office.saved[rel] = p.read_bytes()
        return entries

    monkeypatch.setattr(audit, "commit_many", commit_many)


def test_a_former_archivist_who_puts_back_the_old_index_key_and_recipient_reads_no_new_customer(office):
    """Before, the next profile written was sealed to the index recipient the put-back record names
    — one whose key the former archivist had kept — and they read the new customer's name in it."""
    office.run("find", "binding", who="bob")  # the index is built
    carl = actor(office, "carl")
    old_files = {p: (office.vault_dir / p).read_bytes()
                 for p in ("keys/_index.age", "index/search/recipient.toml")}
    old_key = searchseal.read_key(carl.vault, carl.read_identities())
    old_ident = age.parse_identity(searchseal.identity_text(old_key))
    office.run("member", "remove", "carl", who="alice")
    for p, data in old_files.items():
        (office.vault_dir / p).write_bytes(data)
    problems = _problems(office)
    assert any(p.startswith("keys/_index.age: rolled back") for p in problems)
    assert any(p.startswith("index/search/recipient.toml: rolled back") for p in problems)
    res = office.run("dossier", "create", "--type", "enterprise", "--business", "network-services", "--dept", "sales",
                     "--name", MARKERS["name"], "--contact", MARKERS["contact"], "--json", who="bob", ok=False)
    assert res.exit_code == 1 and "index/search/recipient.toml" in res.stderr and "Traceback" not in res.output
    # Whatever the directory holds now, nothing the former archivist's key opens names the customer.
    for p in (office.vault_dir / "index").rglob("*.age"):
        plain = _opens(p.read_bytes(), [old_ident])
        if plain is not None:
            _, body = unpack(plain)
            assert MARKERS["name"].encode() not in body and MARKERS["contact"].encode() not in body
    # With the files the history names back, the same write succeeds — sealed to the new key only.
    for p in old_files:
        (office.vault_dir / p).write_bytes(office.saved[p])
    number = office.create(name=MARKERS["name"], contact=MARKERS["contact"])
    assert number and office.json("check")["ok"]
    for p in (office.vault_dir / "index").rglob("*.age"):
        assert _opens(p.read_bytes(), [old_ident]) is None, p


def test_a_key_release_deleted_or_swapped_is_named_without_a_key(office):
    office.add_member("staff", "staff", dept="sales")
    office.add_member("head", "dept-head", dept="sales")
    other = office.create(name="Other Customer")
    office.add_doc(other, office.file)
    for number in (office.number, other):
        req = office.json("request", "access", number, "--purpose", "p", who="staff")["number"]
        office.run("request", "approve", req, who="head")
        office.run("grant", req, who="bob")
    releases = sorted((office.vault_dir / "keys" / "grants").iterdir())
    assert len(releases) == 2
    a, b = (p.read_bytes() for p in releases)
    releases[0].write_bytes(b)
    releases[1].write_bytes(a)
    problems = _problems(office)
    assert {p.split(":")[0] for p in problems} == {f"keys/grants/{p.name}" for p in releases}
    releases[0].write_bytes(a)
    releases[1].unlink()
    (problem,) = _problems(office)
    assert problem.startswith(f"keys/grants/{releases[1].name}: missing (history entry ")
