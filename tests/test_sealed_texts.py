"""Sealed free texts — purposes, reasons, notes — shown to the members they were sealed to, where they
decide or act, and to no one else [R-1.3.3, R-3.4.1, R-3.3.2, R-3.5.1]."""

from __future__ import annotations

import json

import pytest

from office import MARKERS, SAM

PURPOSE = "Renewal talks with " + MARKERS["name"]
DENIAL = "Not needed for " + MARKERS["legal_rep"]
HOLD = "Litigation by " + MARKERS["legal_rep"]
LIFT = "Case of " + MARKERS["name"] + " settled"
WHY = "Erasure asked by " + MARKERS["contact"]
NOTE = "Phone changed to " + MARKERS["phone"]


pytestmark = pytest.mark.office(SAM, ("staff", "staff", "sales"), ("head", "dept-head", "sales"),
                                ("other-head", "dept-head", "dev"), ("lisa", "liaison", "sales"),
                                dossier={"name": MARKERS["name"], "contact": MARKERS["contact"]})


def _no_markers(text: str) -> None:
    for m in (PURPOSE, DENIAL, HOLD, LIFT, WHY, NOTE):
        assert m not in text


def test_a_request_purpose_reaches_its_decider_and_no_one_else(office):
    """[R-3.4.1] The department head approves knowing why; another department's head does not learn it."""
    no = office.json("request", "access", office.number, "--purpose", PURPOSE, who="staff")["number"]
    (row,) = office.json("request", "list", "--pending", who="head")
    assert row["number"] == no and row["purpose"] == PURPOSE
    assert PURPOSE in office.run("request", "list", "--pending", who="head").stdout
    assert office.json("request", "show", no, who="bob")["purpose"] == PURPOSE  # the archive ring
    for who in ("other-head", "lisa", None):
        shown = office.json("request", "show", no, who=who)
        assert shown["purpose"] is None and shown["sealed_texts"] == ["purpose"]
        _no_markers(office.run("request", "show", no, who=who).stdout)
    assert "purpose: (sealed)" in office.run("request", "list", "--pending", who="other-head").stdout
    office.run("request", "deny", no, "--reason", DENIAL, who="head")
    (mine,) = office.json("request", "list", "--mine", who="staff")
    assert (mine["state"], mine["purpose"], mine["reason"]) == ("denied", PURPOSE, DENIAL)
    other = office.json("request", "show", no, who="other-head")
    assert other["reason"] is None and set(other["sealed_texts"]) == {"purpose", "reason"}
    opened = [e for e in office.json("audit", "log", "--member", "head", who="alice") if e["action"] == "text.read"]
    assert opened and opened[0]["ref"] == no  # reading a sealed text is recorded, without the text
    _no_markers(json.dumps(office.json("audit", "log", who="alice")))


def test_hold_reasons_and_lifting_needs_a_supervisor_and_a_reason(office):
    """[R-3.3.2] A hold's reason is for the archive ring; lifting one is a supervisor's, saying why."""
    office.run("hold", "add", office.number, "--reason", HOLD, who="bob")
    assert office.json("hold", "list", who="bob")[0]["reason"] == HOLD
    assert HOLD in office.run("hold", "list", who="alice").stdout
    staff = office.json("hold", "list", who="staff")[0]
    assert staff["reason"] is None and staff["sealed_texts"] == ["reason"]
    assert office.run("hold", "remove", office.number, who="alice", ok=False).exit_code == 2
    res = office.run("hold", "remove", office.number, "--reason", LIFT, who="bob", ok=False)
    assert res.exit_code == 1 and "only a supervisor" in res.stderr
    assert office.json("hold", "list", who="bob")  # still held
    office.run("hold", "remove", office.number, "--reason", LIFT, who="alice")
    assert office.json("hold", "list", who="bob") == []
    (lift,) = office.json("hold", "list", "--lifted", who="sam")
    assert (lift["by"], lift["hold_by"], lift["reason"]) == ("alice", "bob", LIFT)
    assert office.json("hold", "list", "--lifted", who="staff")[0]["reason"] is None
    assert office.json("check", who="bob")["ok"]


def test_a_lift_record_signed_by_a_non_supervisor_is_named_by_check(office):
    from office import PASSPHRASE
    from vault.store import identity, records
    from vault.archive.vault import Vault

    office.run("hold", "add", office.number, "--reason", HOLD, who="bob")
    office.run("hold", "remove", office.number, "--reason", LIFT, who="alice")
    (p,) = (office.vault_dir / "holds" / "lifted").iterdir()
    bob = Vault.open(office.vault_dir).act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    records.write_toml(p, bob.sign(dict(records.load_toml(p), by="bob")))
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and f"holds/lifted/{p.name}: changed (does not match history entry" in res.stdout


def test_destroy_show_cancel_deny_and_the_warning_at_approval(office):
    """[R-3.3.2] An approval that cannot execute is flagged at once, and can be withdrawn."""
    no = office.json("destroy", "request", office.number, "--reason", WHY, who="alice")["number"]
    f = office.root / "c.txt"
    f.write_text(MARKERS["content"])
    office.add_doc(office.number, f)
    res = office.run("destroy", "approve", no, who="sam")
    assert "vault: warning: retention has not ended" in res.stderr and "destroy cancel" in res.stderr
    shown = office.json("destroy", "show", no, who="sam")
    assert (shown["state"], shown["reason"], shown["approved_by"]) == ("approved", WHY, "sam")
    assert any("retention has not ended" in w for w in shown["warnings"])
    assert WHY in office.run("destroy", "show", no, who="alice").stdout
    staff = office.json("destroy", "show", no, who="staff")
    assert staff["reason"] is None and staff["sealed_texts"] == ["reason"]
    _no_markers(office.run("destroy", "show", no, who="staff").stdout)
    refused = office.run("destroy", "cancel", no, "--reason", "x", who="bob", ok=False)
    assert refused.exit_code == 1 and "may not cancel" in refused.stderr
    office.run("destroy", "cancel", no, "--reason", "wrong dossier", who="alice")
    shown = office.json("destroy", "show", no, who="alice")
    assert (shown["state"], shown["closed_by"], shown["closing_reason"]) == ("cancelled", "alice", "wrong dossier")
    res = office.run("destroy", "execute", no, who="alice", ok=False)
    assert res.exit_code == 1 and "was cancelled" in res.stderr
    assert office.run("destroy", "cancel", no, "--reason", "again", who="sam", ok=False).exit_code == 1
    # Deny: a supervisor other than the requester; the requester cancels instead.
    no2 = office.json("destroy", "request", office.number, "--reason", WHY, who="alice")["number"]
    res = office.run("destroy", "deny", no2, "--reason", "no", who="alice", ok=False)
    assert res.exit_code == 1 and "may not deny" in res.stderr
    office.run("destroy", "deny", no2, "--reason", "retention runs to 2036", who="sam")
    assert office.json("destroy", "show", no2, who="alice")["closing_reason"] == "retention runs to 2036"
    assert office.run("destroy", "approve", no2, who="sam", ok=False).exit_code == 1
    assert {r["number"]: r["state"] for r in office.json("destroy", "list")} == {no: "cancelled", no2: "denied"}
    assert office.json("check", who="bob")["ok"]


def test_a_forged_cancellation_cancels_nothing(office):
    """Someone who can write the vault directory cannot withdraw a destruction with a staff signature."""
    import hashlib

    from office import PASSPHRASE
    from vault import clock
    from vault.store import identity, records
    from vault.archive.vault import Vault

    no = office.json("destroy", "request", office.number, "--reason", WHY, who="alice")["number"]
    req = records.load_toml(office.vault_dir / "destructions" / f"{no}.toml")
    staff = Vault.open(office.vault_dir).act_as(identity.load_identity(office.ident("staff"), PASSPHRASE))
    records.write_toml(office.vault_dir / "destructions" / f"{no}.closed.toml", staff.sign(
        {"format": 1, "destruction": no, "request_sha256": hashlib.sha256(records.canonical(req)).hexdigest(),
         "outcome": "cancelled", "by": "staff", "at": clock.stamp(), "reason": "eA=="}))
    # Only a destroy.cancel entry by the requester or a supervisor closes it: the file closes nothing.
    assert {r["number"]: r["state"] for r in office.json("destroy", "list")} == {no: "requested"}
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and f"destructions/{no}.closed.toml: no history entry names this record" in res.stdout


def test_review_due_shows_the_note_to_readers_only(office, tmp_path):
    """[R-3.5.1] The department told to update sees what; the notification says a note exists."""
    office.run("review", "done", office.number, "--needs-update", "--note", NOTE, who="bob")
    (row,) = [r for r in office.json("review", "due", who="bob") if r["number"] == office.number]
    assert row["last_note"] == NOTE
    assert NOTE in office.run("review", "due", who="bob").stdout
    (row,) = [r for r in office.json("review", "due", who="lisa") if r["number"] == office.number]
    assert row["last_note"] is None and "last_note" in row["sealed_texts"]
    assert "last note: (sealed)" in office.run("review", "due", who="lisa").stdout
    reports = tmp_path / "reports"
    reports.mkdir()
    office.run("review", "notify", "--report-dir", str(reports), who="bob")
    body = "".join(p.read_text() for p in reports.rglob("*") if p.is_file())
    assert office.number in body and "left a note" in body
    _no_markers(body)
