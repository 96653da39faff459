"""The frozen vault of format version 1 (tests/vectors/frozen-v1) opens, checks and reads with today's code.

The vector was written once by ``tests/vectors/make_frozen_v1.py`` and is never regenerated: if a
test here fails, today's code has broken vaults that already exist. Each test works on a copy,
because reading appends to the audit trail.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner


from vault.archive.grants import list_grants
from vault.archive import audit
from vault.cli import cli
from vault.archive.vault import Vault

VECTOR = Path(__file__).parent / "vectors" / "frozen-v1"
EXPECTED = json.loads((VECTOR / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def frozen(tmp_path):
    """A copy of the frozen vector, and a function running ``vault`` as one of its members."""
    root = tmp_path / "frozen-v1"
    shutil.copytree(VECTOR, root)
    (tmp_path / "pass").write_text(EXPECTED["passphrase"] + "\n")

    def run(*args: str, who: str = "bob", code: int = 0):
        env = {"VAULT_DIR": str(root / "vault"), "VAULT_IDENTITY": str(root / "identities" / f"{who}.key"),
               "VAULT_PASSPHRASE_FILE": str(tmp_path / "pass")}
        res = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        assert res.exit_code == code, f"vault {' '.join(args)} as {who}: {res.output}"
        return res

    run.root = root
    return run


def test_the_vector_is_format_1_and_small():
    assert EXPECTED["format"] == 1
    assert 'format = 1' in (VECTOR / "vault" / "vault.toml").read_text()
    size = sum(p.stat().st_size for p in VECTOR.rglob("*") if p.is_file())
    assert size < 200_000


def test_check_read_data_is_ok(frozen):
    rep = json.loads(frozen("check", "--read-data", "--json").stdout)
    assert rep["ok"], rep["problems"]
    assert rep["fingerprint"] == EXPECTED["fingerprint"]
    assert (rep["dossiers"], rep["documents"]) == (len(EXPECTED["dossiers"]), len(EXPECTED["documents"]))


def test_every_document_reads_back_with_its_sha256(frozen, tmp_path):
    assert len(EXPECTED["documents"]) >= 4
    for i, (docno, digest) in enumerate(sorted(EXPECTED["documents"].items())):
        out = tmp_path / f"doc{i}"
        frozen("doc", "view", docno, "--output", str(out))
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digest, docno


def test_version_chain(frozen):
    chain = json.loads(frozen("doc", "history", "E-2026-000001/0003", "--json").stdout)
    assert [(d["number"], d["version"]) for d in chain] == [("E-2026-000001/0001", 1), ("E-2026-000001/0003", 2)]


def test_audit_trail_verifies():
    res = audit.verify(Vault.open(VECTOR / "vault"))  # read-only: verify appends nothing
    assert res.ok, res.problems
    assert res.count == EXPECTED["audit_entries"]


def test_find_a_customer(frozen):
    for number, name in EXPECTED["dossiers"].items():
        rows = json.loads(frozen("find", "--name", name.upper(), "--json").stdout)
        assert [r["number"] for r in rows] == [number]
    rows = json.loads(frozen("find", "--contact", "office@frostvale.example", "--json").stdout)
    assert [r["number"] for r in rows] == ["E-2026-000001"]
    frozen("find", "--name", "nobody of that name", code=1)


def test_removed_member_stays_removed(frozen):
    for name in EXPECTED["removed_members"]:
        res = frozen("doc", "list", "E-2026-000001", who=name, code=1)
        assert f"member {name} has been removed" in res.output


def test_grant_is_recorded_and_has_expired(frozen):
    grants = {g["number"]: g for g in list_grants(Vault.open(frozen.root / "vault"))}
    for no, want in EXPECTED["grants"].items():
        g = grants[no]
        assert (g["request"], g["grantee"], g["target"]) == (want["request"], want["grantee"], want["dossier"])
        assert g["state"] == "expired"  # a 24-hour grant from 2026-02-02
    # Once expired, the grantee reads nothing: access ends by decryption failing.
    frozen("doc", "view", "I-2026-000002/0001", who="carol", code=1)
