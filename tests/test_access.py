"""Consultation and copy requests, grants as key releases, refusals, and the audit trail [R-3.4.1, R-3.4.2]."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from office import MARKERS, PASSPHRASE, TWO_DEPTS
from vault.office import documents
from vault.archive import grants
from vault.archive import audit
from vault import clock
from vault.store import identity
from vault.crypto import age
from vault.errors import NoIdentityMatchError, PermissionDeniedError
from vault.store.keytable import read_key_table
from vault.archive.vault import Vault


pytestmark = pytest.mark.office(*TWO_DEPTS, ("audrey", "auditor", "audit"),
                                dossier={"name": MARKERS["name"], "contact": MARKERS["contact"]}, doc=MARKERS["content"])


def _refused(res, fragment: str) -> None:
    assert res.exit_code == 1 and "Traceback" not in res.output and fragment in res.stderr, res.output


def _last_entry(office) -> dict:
    return list(audit.entries(Vault.open(office.vault_dir)))[-1]


def test_consultation_flow_releases_keys_until_expiry(office):
    staff = office.actor("staff-sales")
    with pytest.raises(PermissionDeniedError):  # no grant yet: refused, and audited
        documents.view(staff, office.doc, io.BytesIO())
    assert _last_entry(office)["outcome"] == "refused"

    req = office.json("request", "access", office.number, "--purpose", MARKERS["title"], who="staff-sales")["number"]
    _refused(office.run("grant", req, who="bob", ok=False), "not approved")
    _refused(office.run("request", "approve", req, who="head-dev", ok=False), "not yours")
    _refused(office.run("request", "approve", req, who="staff-sales", ok=False), "may not request.approve-access")
    assert office.json("request", "approve", req, who="head-sales")["state"] == "approved"
    _refused(office.run("request", "approve", req, who="head-sales", ok=False), "already been decided")
    gno = office.json("grant", req, "--hours", "2", who="bob")["number"]
    assert office.json("request", "show", req)["state"] == "granted"

    out = io.BytesIO()
    documents.view(office.actor("staff-sales"), office.doc, out)
    assert out.getvalue().decode() == MARKERS["content"]
    assert _last_entry(office)["action"] == "doc.view" and _last_entry(office)["member"] == "staff-sales"
    # Outside the archive department, plaintext goes to a terminal only.
    _refused(office.run("doc", "view", office.doc, who="staff-sales", ok=False), "terminal only")
    # A document added during the grant is readable too (the key release is re-issued).
    f = Path(office.root) / "late.txt"
    f.write_text("late")
    late = office.add_doc(office.number, f)
    out = io.BytesIO()
    documents.view(office.actor("staff-sales"), late, out)
    assert out.getvalue() == b"late"

    # Two hours later: refused by the tool at once, then by decryption after the sweep.
    office.later(hours=3)
    assert office.json("grant", "list")[0]["state"] == "expired"
    with pytest.raises(PermissionDeniedError, match="no active grant"):
        documents.view(office.actor("staff-sales"), office.doc, io.BytesIO())
    assert "profile" not in office.json("dossier", "show", office.number, who="staff-sales")
    office.add_member("olga", "operator", dept="tech")
    assert office.json("grant", "sweep", who="olga")["swept"] == [gno]  # an operator sweeps, holding no key
    ident = identity.load_identity(office.ident("staff-sales"), PASSPHRASE).age_identity()
    for p in (office.vault_dir / "keys").rglob("*.age"):
        with pytest.raises(NoIdentityMatchError):
            age.decrypt_bytes(p.read_bytes(), [ident])


def test_revoke_ends_access_by_decryption(office):
    req = office.json("request", "access", office.number, "--purpose", "audit prep", who="staff-dev")["number"]
    office.run("request", "approve", req, who="head-dev")
    gno = office.json("grant", req, who="bob")["number"]
    v = Vault.open(office.vault_dir)
    grant_file = grants.grant_key_path(v, next(iter(p.name.split(".")[0] for p in (office.vault_dir / "keys" / "grants").iterdir())), gno)
    ident = identity.load_identity(office.ident("staff-dev"), PASSPHRASE).age_identity()
    table = read_key_table(grant_file, [ident], dossier=grant_file.name.split(".")[0])
    assert table.keys
    office.run("grant", "revoke", gno, who="bob")
    assert not grant_file.exists()
    assert office.json("grant", "list")[0]["state"] == "revoked"
    _refused(office.run("grant", "revoke", gno, who="bob", ok=False), "already closed")
    with pytest.raises(PermissionDeniedError):
        documents.view(office.actor("staff-dev"), office.doc, io.BytesIO())


def test_denial_needs_a_reason_and_is_final(office):
    req = office.json("request", "access", office.number, "--purpose", "curious", who="staff-sales")["number"]
    assert office.run("request", "deny", req, who="head-sales", ok=False).exit_code == 2  # --reason missing
    assert office.json("request", "deny", req, "--reason", "no business need", who="head-sales")["state"] == "denied"
    _refused(office.run("grant", req, who="bob", ok=False), "denied")
    assert office.json("request", "list", "--pending") == []


def test_copy_approval_is_for_the_archive_head_and_used_once(office):
    req = office.json("request", "copy", office.doc, "--purpose", "court filing", who="staff-sales")["number"]
    _refused(office.run("request", "approve", req, who="head-sales", ok=False), "may not request.approve-copy")
    office.run("request", "approve", req, who="alice")
    staff = office.actor("staff-sales")
    assert grants.consume_copy_approval(staff, office.doc) == req
    with pytest.raises(PermissionDeniedError):
        grants.consume_copy_approval(staff, office.doc)
    assert office.json("request", "show", req)["state"] == "used"


def test_supervisor_cannot_approve_own_copy_request(office):
    req = office.json("request", "copy", office.doc, "--purpose", "x", who="alice")["number"]
    _refused(office.run("request", "approve", req, who="alice", ok=False), "your own request")


def test_audit_trail_records_everything_and_verifies(office):
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    office.run("grant", req, who="bob")
    office.run("doc", "view", office.doc, who="bob")
    office.run("doc", "view", office.doc, who="staff-dev", ok=False)
    log = office.json("audit", "log", who="audrey")
    actions = [(e["member"], e["action"], e["outcome"]) for e in log]
    for expected in [("alice", "member.add", "ok"), ("bob", "dossier.create", "ok"), ("bob", "doc.add", "ok"),
                     ("staff-sales", "request.access", "ok"), ("head-sales", "request.approve", "ok"),
                     ("bob", "grant.create", "ok"), ("bob", "doc.copy", "ok"), ("staff-dev", "doc.save", "refused")]:
        assert expected in actions
    assert office.json("audit", "log", "--member", "head-sales", who="audrey")[0]["action"] == "request.approve"
    assert all(e.get("number", office.number).startswith(office.number) for e in
               office.json("audit", "log", "--dossier", office.number, who="audrey"))
    assert office.json("audit", "verify")["ok"]
    # The auditor reads the trail but no dossier.
    _refused(office.run("doc", "view", office.doc, who="audrey", ok=False), "may not doc.view")
    _refused(office.run("audit", "log", who="staff-sales", ok=False), "may not audit.read")


def _tamper(office, fn) -> list[str]:
    log = office.vault_dir / "audit" / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(fn(lines)))
    res = office.run("audit", "verify", "--json", ok=False)
    assert res.exit_code == 1
    return json.loads(res.stdout)["problems"]


@pytest.mark.parametrize("name, fn, fragment", [
    ("changed", lambda ls: ls[:2] + [ls[2].replace(b'"ok"', b'"refused"')] + ls[3:], "line 3"),
    ("deleted", lambda ls: ls[:2] + ls[3:], "line 3"),
    ("inserted", lambda ls: ls[:3] + [ls[1]] + ls[3:], "line 4"),
    ("reordered", lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:], "line 3"),
    ("tail cut", lambda ls: ls[:-1], "history cut or rolled back"),
])
def test_audit_tampering_is_named(office, name, fn, fragment):
    problems = _tamper(office, fn)
    assert problems and fragment in problems[0], problems


def test_audit_rolled_back_with_its_checkpoint_is_caught(office, tmp_path):
    d = office.vault_dir / "audit"
    old_log, old_cp = (d / "log.jsonl").read_bytes(), (d / "checkpoint.toml").read_bytes()
    f = tmp_path / "more.txt"
    f.write_text("more")
    office.add_doc(office.number, f)
    (d / "log.jsonl").write_bytes(old_log)
    (d / "checkpoint.toml").write_bytes(old_cp)
    # This client verified the longer history: it names the rollback.
    problems = json.loads(office.run("audit", "verify", "--json", ok=False).stdout)["problems"]
    assert "history cut or rolled back" in problems[0]
    # A client that never saw it still finds a manifest the history does not name.
    fresh = {"VAULT_STATE_DIR": str(tmp_path / "fresh-client")}
    problems = json.loads(office.run("check", "--json", ok=False, env=fresh).stdout)["problems"]
    assert any("manifest.toml: changed" in p for p in problems), problems


def test_no_customer_data_in_requests_or_audit(office):
    req = office.json("request", "access", office.number, "--purpose", MARKERS["title"], who="staff-sales")["number"]
    office.run("request", "deny", req, "--reason", MARKERS["legal_rep"], who="head-sales")
    office.run("find", "--name", MARKERS["name"], who="bob")
    for sub in ("audit", "requests"):
        for p in (office.vault_dir / sub).rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                for m in MARKERS.values():
                    assert m.encode() not in data and m.lower().encode() not in data, (p, m)


def test_a_forged_decision_unlocks_nothing(office):
    """A member who writes a validly signed approval of their own request straight into the vault
    gets no grant: the decider is checked, not just the signature."""
    from vault.store import records

    req = office.json("request", "access", office.number, "--purpose", "p", who="staff-sales")["number"]
    staff = office.actor("staff-sales")
    req_rec = records.load_toml(office.vault_dir / "requests" / f"{req}.toml")
    forged = staff.sign({"format": 1, "request": req, "request_sha256": grants._digest(req_rec),
                         "decision": "approved", "by": "staff-sales", "at": clock.stamp()})
    records.write_toml(office.vault_dir / "requests" / f"{req}.decision.toml", forged)
    res = office.run("grant", req, who="bob", ok=False)
    assert res.exit_code == 1 and "not approved" in res.stderr  # the history has no decision
    assert not (office.vault_dir / "keys" / "grants").exists() or not list((office.vault_dir / "keys" / "grants").iterdir())


def test_a_department_heads_own_request_goes_to_a_supervisor(office):
    """[R-3.4.1] No one approves their own request: the head's goes up, as the policy says."""
    shown = office.run("policy", "show").stdout
    assert "head_request_approver = \"supervisor\"" in shown
    req = office.json("request", "access", office.number, "--purpose", "own review", who="head-sales")["number"]
    assert office.json("request", "show", req)["approver_role"] == "supervisor"
    _refused(office.run("request", "approve", req, who="head-sales", ok=False), "your own request")
    office.add_member("head2-sales", "dept-head", dept="sales")
    _refused(office.run("request", "approve", req, who="head2-sales", ok=False), "a supervisor decides it")
    assert office.json("request", "approve", req, who="alice")["state"] == "approved"
    office.run("grant", req, who="bob")
    out = io.BytesIO()
    documents.view(office.actor("head-sales"), office.doc, out)
    assert out.getvalue().decode() == MARKERS["content"]
    assert office.json("check", who="audrey")["ok"]


def test_writing_plaintext_to_a_file_is_a_copy(office, tmp_path):
    """[R-3.4.2] doc view --output is logged as a copy; without doc.save it needs an approved copy request."""
    rights = office.json("policy", "show")["rights"]["doc.save"]["description"]
    assert "archivist" in rights and "R-3.4.2" in rights
    out = tmp_path / "copy.txt"
    office.run("doc", "view", office.doc, "--output", str(out), who="bob")
    assert out.read_text() == MARKERS["content"]
    e = _last_entry(office)
    assert (e["member"], e["action"], e["ref"]) == ("bob", "doc.copy", "doc.save")
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    office.run("grant", req, who="bob")
    out2 = tmp_path / "staff.txt"
    _refused(office.run("doc", "view", office.doc, "--output", str(out2), who="staff-sales", ok=False), "terminal only")
    assert not out2.exists() and _last_entry(office)["action"] == "doc.save"
    copy = office.json("request", "copy", office.doc, "--purpose", "for the customer", who="staff-sales")["number"]
    office.run("request", "approve", copy, who="alice")
    office.run("doc", "view", office.doc, "--output", str(out2), who="staff-sales")
    assert out2.read_text() == MARKERS["content"]
    e = _last_entry(office)
    assert (e["member"], e["action"], e["ref"]) == ("staff-sales", "doc.copy", copy)
    out2.unlink()
    _refused(office.run("doc", "view", office.doc, "--output", str(out2), who="staff-sales", ok=False), "terminal only")


def test_writing_plaintext_to_a_file_under_an_expired_copy_approval_names_it(office, tmp_path):
    """[R-3.4.2] doc view --output under a copy approval past COPY_APPROVAL_DAYS is refused in one line
    naming the request, with the hint to file a new one; nothing is written and it stays unused."""
    copy = office.json("request", "copy", office.doc, "--purpose", "for the customer", who="staff-sales")["number"]
    office.run("request", "approve", copy, who="alice")
    office.later(days=grants.COPY_APPROVAL_DAYS, hours=1)
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    office.run("grant", req, who="bob")
    out = tmp_path / "staff.txt"
    res = office.run("doc", "view", office.doc, "--output", str(out), who="staff-sales", ok=False)
    _refused(res, "has expired")
    assert copy in res.stderr and "new copy request" in res.stderr and not out.exists()
    assert office.json("request", "show", copy, who="staff-sales")["state"] == "approved"


def test_an_approval_for_a_requester_removed_since_releases_nothing(office):
    """The grant decides under the exclusive lock, on the members as they are then: a requester
    removed after the approval gets no grant and no key release [R-3.4.1]."""
    no = office.json("request", "access", office.number, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", no, who="head-sales")
    office.run("member", "remove", "staff-sales", who="alice")
    _refused(office.run("grant", no, who="bob", ok=False), "staff-sales is no longer a member")
    assert not list((office.vault_dir / "keys").glob("grants/*.age"))
    assert grants.list_grants(Vault.open(office.vault_dir)) == []


@pytest.mark.office(*TWO_DEPTS, ("sam", "supervisor", "archive"), dossier={"name": MARKERS["name"]},
                    doc=MARKERS["content"])
def test_a_request_approved_before_its_dossier_was_destroyed_is_granted_nothing(office):
    """The grant is refused as the request would be: the dossier is destroyed — not with the key
    table's absence named as damage and a hint to restore it from a backup."""
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    no = office.json("destroy", "request", office.number, "--reason", "r", who="alice")["number"]
    office.run("destroy", "approve", no, "--override-retention", "court order", who="sam")
    office.run("destroy", "execute", no, who="alice")
    res = office.run("grant", req, who="bob", ok=False)
    _refused(res, "has been destroyed")
    assert "backup" not in res.stderr, res.stderr
    office.run("check", who="bob")
