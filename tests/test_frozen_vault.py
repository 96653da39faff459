"""The frozen vault of format version 1 (tests/vectors/frozen-v1) migrates, then checks and reads with today's code.

The vector was written once by ``tests/vectors/make_frozen_v1.py`` and is never regenerated: if a
test here fails, today's code has broken vaults that already exist. Each test works on a copy,
because reading appends to the audit trail.
"""

from __future__ import annotations

import datetime as dt
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
#: SHA-256 over the vector's paths and bytes, as committed (see the last test).
FROZEN_SHA256 = "d567392dcdeae899984ea22e59a7a30979a446459c3d60bbfd12ba06dfbd3a94"


def _vector(tmp_path):
    """A copy of the frozen vector (version 1, not migrated), and a function running ``vault`` as
    one of its members (``run.root``: the copy)."""
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


@pytest.fixture
def frozen(tmp_path):
    """A copy of the frozen vector migrated, and a function running ``vault`` as one of its members."""
    run = _vector(tmp_path)
    run.fingerprint = json.loads(run("migrate", "--json", who="alice").stdout)["fingerprint"]
    return run


def test_format_1_is_refused_with_a_hint_to_migrate(tmp_path):
    root = tmp_path / "v1"
    shutil.copytree(VECTOR, root)
    env = {"VAULT_DIR": str(root / "vault")}
    res = CliRunner().invoke(cli, ["dossier", "list"], env=env, catch_exceptions=False)
    assert res.exit_code != 0 and "vault migrate" in res.stderr and "Traceback" not in res.output


def test_migration_keeps_the_v1_log_and_names_the_old_fingerprint(frozen):
    v = Vault.open(frozen.root / "vault")
    assert v.config["format"] == 2 and v.config["migrated_from"] == EXPECTED["fingerprint"].replace(" ", "")
    assert frozen.fingerprint == v.fingerprint != EXPECTED["fingerprint"]
    v1 = (frozen.root / "vault" / "audit" / "v1-log.jsonl").read_bytes().splitlines()
    assert len(v1) == EXPECTED["audit_entries"]
    # Running it again changes nothing; only a supervisor migrates.
    assert "already has format 2" in frozen("migrate", who="alice", code=1).stderr


def test_only_a_supervisor_migrates(tmp_path):
    root = tmp_path / "v1"
    shutil.copytree(VECTOR, root)
    (tmp_path / "pass").write_text(EXPECTED["passphrase"] + "\n")
    env = {"VAULT_DIR": str(root / "vault"), "VAULT_IDENTITY": str(root / "identities" / "bob.key"),
           "VAULT_PASSPHRASE_FILE": str(tmp_path / "pass")}
    res = CliRunner().invoke(cli, ["migrate"], env=env, catch_exceptions=False)
    assert res.exit_code != 0 and "supervisor" in res.stderr
    assert 'format = 1' in (root / "vault" / "vault.toml").read_text()


@pytest.mark.parametrize("line", [b"not json", b"[" * 100_000 + b"]" * 100_000, b"[1, 2]"], ids=["text", "deep", "list"])
def test_a_broken_line_in_the_v1_log_stops_the_migration_with_one_line(tmp_path, line):
    """A vault-directory writer's line in the format-1 log: named, nothing migrated, no traceback."""
    root = tmp_path / "v1"
    shutil.copytree(VECTOR, root)
    (tmp_path / "pass").write_text(EXPECTED["passphrase"] + "\n")
    log = root / "vault" / "audit" / "log.jsonl"
    lines = log.read_bytes().splitlines()
    log.write_bytes(b"\n".join([*lines[:2], line, *lines[2:]]) + b"\n")
    env = {"VAULT_DIR": str(root / "vault"), "VAULT_IDENTITY": str(root / "identities" / "alice.key"),
           "VAULT_PASSPHRASE_FILE": str(tmp_path / "pass")}
    res = CliRunner().invoke(cli, ["migrate"], env=env, catch_exceptions=False)
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "audit/log.jsonl line 3: the format-1 chain is broken" in res.stderr
    assert 'format = 1' in (root / "vault" / "vault.toml").read_text()


def test_the_vector_is_format_1_and_small():
    assert EXPECTED["format"] == 1
    assert 'format = 1' in (VECTOR / "vault" / "vault.toml").read_text()
    size = sum(p.stat().st_size for p in VECTOR.rglob("*") if p.is_file())
    assert size < 200_000


def test_check_read_data_is_ok(frozen):
    rep = json.loads(frozen("check", "--read-data", "--json").stdout)
    assert rep["ok"], rep["problems"]
    assert rep["fingerprint"] == frozen.fingerprint
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


def test_audit_trail_verifies(frozen):
    res = audit.verify(Vault.open(frozen.root / "vault"))
    assert res.ok, res.problems
    assert res.count == 1  # the migration entry: the format-1 trail is kept in audit/v1-log.jsonl


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


def test_a_migrated_vault_takes_names_and_a_time_zone(frozen):
    """Display names and the office's time zone are optional additions: the migrated vault's members
    keep showing by their ids, and a member named in Chinese joins it."""
    listed = json.loads(frozen("member", "list", "--json").stdout)
    assert listed and all(m["display_name"] is None for m in listed)
    from vault.store.identity import MemberIdentity

    key = MemberIdentity.generate().public.line()
    added = json.loads(frozen("member", "add", "张三", "--key", key, "--role", "staff", "--dept", "sales", "--json",
                              who="alice").stdout)
    assert json.loads(frozen("member", "show", "张三", "--json").stdout)["name"] == added["name"]
    # The removed v1 member's id is still taken, in any spelling.
    assert "looks like" in frozen("member", "add", "DAVE", "--key", MemberIdentity.generate().public.line(),
                                  "--role", "staff", "--dept", "sales", who="alice", code=1).stderr
    # Its times are shown in the zone asked for (its version-1 policy has no time_zone).
    assert "+08:00" in frozen("--tz", "Asia/Shanghai", "audit", "log", who="alice").stdout
    frozen("check")


def test_a_migrated_vault_has_what_format_2_asks_of_its_policy(frozen, tmp_path):
    """Format 2 counts a policy update only from a role that may ``policy.manage`` and only if the
    supervisor role keeps it; a version-1 policy never named that right (version 1 let supervisors
    replace the policy by their role). The migration gives it to supervisors — and only that: what
    the current default adds beyond it is the office's to decide — so a migrated office can change
    its policy, and a non-supervisor still cannot."""
    import tomllib

    from vault.archive.policy import DEFAULT_POLICY

    v1 = tomllib.loads((VECTOR / "vault" / "policy.toml").read_text())
    assert "policy.manage" not in v1["roles"]["supervisor"]["may"]
    shown = tomllib.loads(frozen("policy", "show").stdout)
    assert "policy.manage" in shown["roles"]["supervisor"]["may"]
    for role, spec in shown["roles"].items():
        added = set(spec["may"]) - set(v1["roles"][role]["may"])
        assert added <= ({"policy.manage"} if role == "supervisor" else set()), (role, added)
        assert added <= set(DEFAULT_POLICY["roles"][role]["may"])
    new = tmp_path / "policy.toml"
    new.write_text(frozen("policy", "show").stdout.replace("years = 10", "years = 12"))
    assert "may not policy.manage" in frozen("policy", "update", str(new), who="bob", code=1).stderr
    frozen("policy", "update", str(new), who="alice")
    assert "years = 12" in frozen("policy", "show").stdout
    assert json.loads(frozen("check", "--json").stdout)["ok"]
    assert json.loads(frozen("audit", "verify", "--json", who="alice").stdout)["ok"]


def test_the_frozen_vector_is_unchanged_by_the_tests():
    """The vector's bytes are what ``expected.json`` was written from: the migration works on copies."""
    digest = hashlib.sha256()
    for p in sorted(VECTOR.rglob("*")):
        if p.is_file():
            digest.update(p.relative_to(VECTOR).as_posix().encode() + b"\0" + p.read_bytes())
    assert digest.hexdigest() == FROZEN_SHA256


def test_a_migrated_vault_lends_and_takes_back_paper_originals(frozen, tmp_path):
    """A vault migrated without paper loans in its state (the vector has none; earlier migrations
    carried none): its first loan is the first the history holds, and every command reads on after
    it (the loan's entry was written, then every command, ``check`` too, stopped on a KeyError)."""
    f = tmp_path / "letter.txt"
    f.write_text("original letter")
    doc = json.loads(frozen("doc", "add", "E-2026-000001", str(f), "--category", "contract", "--source", "desk",
                            "--date", "2026-01-02", "--original", "--paper-location", "Room 1", "--json").stdout)
    req = json.loads(frozen("request", "access", "E-2026-000001", "--purpose", "meeting", "--json",
                            who="carol").stdout)["number"]
    frozen("request", "approve", req, who="erin")
    due = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    loan = json.loads(frozen("paper", "lend", doc["number"], "--to", "carol", "--request", req, "--due", due,
                             "--json").stdout)["number"]
    assert [r["number"] for r in json.loads(frozen("paper", "out", "--json").stdout)] == [loan]
    frozen("paper", "return", loan)
    assert json.loads(frozen("paper", "out", "--json").stdout) == []
    rep = json.loads(frozen("check", "--json").stdout)
    assert rep["ok"], rep["problems"]


def test_a_review_and_a_hold_of_version_1_are_read_after_migration(tmp_path):
    """Reviews and holds came before format 2: a migrated vault's are adopted by the migration's
    entry, signed by the migrating supervisor, and are read as their own signature says (a review
    by bob was 'not written by its reviewer' once alice migrated the vault)."""
    from vault.store import identity, records

    run = _vector(tmp_path)
    root = run.root
    bob = identity.load_identity(root / "identities" / "bob.key", EXPECTED["passphrase"])
    dossier = "fd6049dd16f16fad73a8e2498ac85a52"  # E-2026-000001
    rev = records.sign_record({"format": 1, "dossier": dossier, "number": "E-2026-000001", "seq": 1,
                               "at": "2026-02-03T09:00:00Z", "by": "bob", "outcome": "verified"},
                              signer="bob", key=bob)
    (root / "vault" / "reviews" / dossier).mkdir(parents=True)
    records.write_toml(root / "vault" / "reviews" / dossier / "1.toml", rev)
    hold = records.sign_record({"format": 1, "dossier": dossier, "number": "E-2026-000001", "at": "2026-02-03T09:00:00Z",
                                "by": "bob", "reason": "eA=="}, signer="bob", key=bob)
    (root / "vault" / "holds").mkdir()
    records.write_toml(root / "vault" / "holds" / f"{dossier}.toml", hold)
    run("migrate", who="alice")
    rep = json.loads(run("check", "--json").stdout)
    assert rep["ok"], rep["problems"]
    run("review", "due")


def test_a_paper_loan_of_version_1_is_out_after_migration_and_comes_back(tmp_path):
    """Paper loans came before format 2: a migrated vault's loan out is listed as out, signed by the
    archivist who lent it, and is taken back (it was an integrity error, 'signed by bob, not by
    bob', and could never be returned)."""
    from vault.store import identity, records

    run = _vector(tmp_path)
    root = run.root
    bob = identity.load_identity(root / "identities" / "bob.key", EXPECTED["passphrase"])
    loan = records.sign_record({"format": 1, "number": "L-000001", "document": "I-2026-000002/0001",
                                "dossier": "6f71a9bc3495dccc34a39faca0598ae7", "borrower": "carol",
                                "request": "R-000001", "from_location": "cabinet 2, drawer 1",
                                "at": "2026-02-02T11:00:00Z", "by": "bob", "due": "2026-02-20"},
                               signer="bob", key=bob)
    (root / "vault" / "paper" / "loans").mkdir(parents=True)
    records.write_toml(root / "vault" / "paper" / "loans" / "L-000001.toml", loan)
    run("migrate", who="alice")
    (row,) = json.loads(run("paper", "out", "--json").stdout)
    assert (row["number"], row["borrower"], row["by"]) == ("L-000001", "carol", "bob")
    run("paper", "return", "L-000001")
    assert json.loads(run("paper", "out", "--json").stdout) == []
    rep = json.loads(run("check", "--json").stdout)
    assert rep["ok"], rep["problems"]


def test_an_invitation_of_version_1_is_listed_after_migration(tmp_path):
    """Invitations came before format 2: a migrated vault's invitation is adopted by the migration's
    entry, signed by the migrating supervisor, and is read as issued by the archivist its own
    signature names (it was 'signed by bob, who may not issue it' once alice migrated the vault)."""
    import hashlib
    import tomllib

    import tomli_w

    from vault.crypto import age
    from vault.store import identity, records

    run = _vector(tmp_path)
    root = run.root
    bob = identity.load_identity(root / "identities" / "bob.key", EXPECTED["passphrase"])
    token = b"\x07" * 32
    iid = "0123456789abcdef0123456789abcdef"
    rec = records.sign_record({"format": 1, "id": iid, "dossier": "fd6049dd16f16fad73a8e2498ac85a52",
                               "number": "E-2026-000001", "dept": "sales", "by": "bob",
                               "issued_at": "2026-02-03T09:00:00Z", "expires_at": "2026-02-10T09:00:00Z", "uses": 1,
                               "token_sha256": hashlib.sha256(token).hexdigest(),
                               "recipient": str(age.identity_from_seed(token).recipient())}, signer="bob", key=bob)
    (root / "vault" / "intake" / "invitations").mkdir(parents=True)
    records.write_toml(root / "vault" / "intake" / "invitations" / f"{iid}.toml", rec)
    run("migrate", who="alice")
    # Version 1's policy of this vector never named the right; the office grants it after migrating.
    pol = tomllib.loads(run("policy", "show").stdout)
    pol["roles"]["archivist"]["may"].append("intake.invite")
    (tmp_path / "policy.toml").write_bytes(tomli_w.dumps(pol).encode())
    run("policy", "update", str(tmp_path / "policy.toml"), who="alice")
    (row,) = json.loads(run("intake", "invitations", "--json").stdout)
    assert (row["id"], row["by"], row["number"]) == (iid, "bob", "E-2026-000001")
    rep = json.loads(run("check", "--json").stdout)
    assert rep["ok"], rep["problems"]
