"""Periodic review across years, completeness rules, and notifications by report file and real SMTP [R-3.5.1, R-1.3.2]."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from loopback import refused_port
from office import MARKERS, PASSPHRASE
from vault.archive import audit, manifests
from vault.store import identity, records
from vault.office import review
from vault.archive import reviews
from vault.errors import ConflictError, PermissionDeniedError, VaultError
from vault.store.keytable import read_key_table

START = dt.datetime(2024, 1, 10, 9, 0, tzinfo=dt.timezone.utc)


def at(office, day: str) -> None:
    """Move the office's clock to 09:00 UTC on ``day``."""
    office.at(f"{day}T09:00:00Z")


pytestmark = pytest.mark.office(("lisa", "liaison", "sales"), ("audrey", "auditor", "audit"), ("otto", "operator", "it"),
                                ("sam", "staff", "sales"), now=START.isoformat())


@pytest.fixture
def office(office, tmp_path):
    o = office
    # An enterprise with everything but a contract; an individual that is complete; an individual
    # with neither a contact nor any document.
    o.ent = o.create(name=MARKERS["name"], contact=MARKERS["contact"], legal_rep=MARKERS["legal_rep"],
                     address=MARKERS["address"])
    o.ind = o.create(ctype="individual", dept="dev", name="Ada Individual", contact=MARKERS["phone"])
    o.bare = o.create(ctype="individual", dept="sales", name="Bare Individual")
    f = tmp_path / "basic.txt"
    f.write_text(MARKERS["content"])
    o.add_doc(o.ent, f, "bob", "basic-info")
    o.add_doc(o.ind, f, "bob", "basic-info")
    return o


def due(office, who: str = "bob", *args: str) -> dict[str, dict]:
    return {r["number"]: r for r in office.json("review", "due", *args, who=who)}


def scan(paths: list[Path] | Path) -> list[str]:
    """Names of the customer markers found in the files under ``paths``."""
    paths = paths if isinstance(paths, list) else [paths]
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    blob = b"".join(f.read_bytes() for f in files)
    return sorted(k for k, v in MARKERS.items() if v.encode() in blob)


def refused(res, fragment: str, code: int = 1) -> None:
    assert res.exit_code == code and "Traceback" not in res.output and fragment in res.stderr, res.output


def test_interval_is_the_longest_matching_class_prefix():
    policy = {"review": {"default_days": 365, "classes": {"enterprise": 180, "enterprise/network-services": 90,
                                                          "ent": 7}}}
    assert reviews.interval_days(policy, "enterprise/network-services/2024") == 90
    assert reviews.interval_days(policy, "enterprise/retail/2024") == 180
    assert reviews.interval_days(policy, "enterprises/retail/2024") == 365  # whole segments only
    assert reviews.interval_days(policy, "individual/retail/2024") == 365


def test_due_by_interval_per_class_and_done_resets(office):
    # At creation: nothing is stale; the two incomplete dossiers are listed for that.
    rows = due(office)
    assert set(rows) == {office.ent, office.bare}
    assert not any(r["stale"] for r in rows.values())
    assert rows[office.ent]["last_review"] == "2024-01-10" and rows[office.ent]["interval_days"] == 180

    # 180 days on, the enterprise is stale (class enterprise/…), the individuals (365 days) are not.
    at(office, "2024-07-09")
    rows = due(office)
    assert rows[office.ent]["stale"] and rows[office.ent]["stale_since"] == "2024-07-08"
    assert office.ind not in rows and not rows[office.bare]["stale"]

    # A year on (2024 is a leap year), the individuals are stale too; --dept narrows the list.
    at(office, "2025-01-10")
    rows = due(office)
    assert rows[office.ind]["stale_since"] == "2025-01-09" and rows[office.ind]["interval_days"] == 365
    assert set(due(office, "bob", "--dept", "dev")) == {office.ind}

    # A verified review restarts the interval; the record is signed and schema-valid.
    rec = office.json("review", "done", office.ind, "--verified", who="bob")
    assert rec["seq"] == 1 and rec["outcome"] == "verified"
    assert office.ind not in due(office)
    refused(office.run("review", "done", office.ent, "--verified", who="lisa", ok=False), "may not review.record")
    assert office.json("review", "done", office.ent, "--verified", who="alice")["by"] == "alice"
    rows = due(office)
    assert not rows[office.ent]["stale"] and rows[office.ent]["last_review"] == "2025-01-10"

    # ... until the next interval has passed.
    at(office, "2025-07-09")
    assert due(office)[office.ent]["stale_since"] == "2025-07-09"
    v = office.open()
    hist = reviews.history(v, next(p.name for p in (office.vault_dir / "reviews").iterdir()
                                  if reviews.history(v, p.name)[0]["number"] == office.ent))
    assert [r["by"] for r in hist] == ["alice"]
    log = [e for e in audit.entries(v) if e["action"] == "review.record"]
    assert [(e["member"], e["outcome"], e.get("number")) for e in log] == [
        ("bob", "ok", office.ind), ("lisa", "refused", office.ent), ("alice", "ok", office.ent)]


@pytest.mark.parametrize("case", ["dated-ahead", "another-number"])
def test_a_review_says_when_and_of_what_its_entry_says(office, case):
    """[R-3.5.1] An archivist's review written with the library, dated ten years ahead (its dossier
    not due again for a decade) or naming another dossier's archive number, is refused by ``review
    due`` in one line and named by ``vault check``."""
    bob = office.actor("bob")
    v = bob.vault
    did = manifests.resolve(v, office.ent)
    stamp = office.clock.stamp()
    rec = bob.sign({"format": 1, "dossier": did, "number": office.ind if case == "another-number" else office.ent,
                    "seq": 1, "at": f"{int(stamp[:4]) + 10}{stamp[4:]}" if case == "dated-ahead" else stamp,
                    "by": "bob", "outcome": "verified"})
    with v.lock(exclusive=True):
        audit.commit(bob, "review.record", {f"reviews/{did}/1.toml": records.dump_toml(rec)}, number=office.ent,
                     ref="review-1", obj=did)
    rel = f"reviews/{did}/1.toml"
    res = office.run("review", "due", who="alice", ok=False)
    assert res.exit_code == 1 and rel in res.stderr and "Traceback" not in res.output, res.output
    assert len(res.stderr.strip().splitlines()) <= 2, res.stderr
    res = office.run("check", who="alice", ok=False)
    assert res.exit_code == 1 and rel in res.stdout, res.stdout


def test_needs_update_keeps_the_note_sealed(office):
    at(office, "2024-03-01")
    refused(office.run("review", "done", office.ind, who="bob", ok=False), "say how the review went", code=2)
    refused(office.run("review", "done", office.ind, "--verified", "--needs-update", "--note", "x", who="bob",
                       ok=False), "one of them", code=2)
    refused(office.run("review", "done", office.ind, "--needs-update", who="bob", ok=False), "needs a note")
    office.json("review", "done", office.ind, "--needs-update", "--note", MARKERS["title"], who="bob")
    row = due(office)[office.ind]
    assert row["needs_update"] and row["needs_update_since"] == "2024-03-01" and not row["stale"]
    assert scan(office.vault_dir) == []  # the note is nowhere in clear, nor in the audit trail

    v = office.open()
    rec = reviews.history(v, next((office.vault_dir / "reviews").iterdir()).name)[-1]
    bob = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    assert rec["outcome"] == "needs-update" and rec["note_key"]
    assert review.read_note(bob, rec) == MARKERS["title"]
    audrey = v.act_as(identity.load_identity(office.ident("audrey"), PASSPHRASE))
    with pytest.raises(PermissionDeniedError):
        review.read_note(audrey, rec)

    # A later verified review clears it.
    office.json("review", "done", office.ind, "--verified", who="bob")
    assert office.ind not in due(office)


def test_incomplete_until_the_contract_is_added(office, tmp_path):
    rows = {r["number"]: r for r in office.json("dossier", "completeness", who="bob")}
    assert rows[office.ent]["missing_categories"] == ["contract"] and rows[office.ent]["missing_fields"] == []
    assert rows[office.ent]["incomplete_since"] == "2024-01-10"
    assert rows[office.bare]["missing_categories"] == ["basic-info"]
    assert rows[office.bare]["missing_fields"] == ["contact"]
    assert rows[office.ind]["complete"] and rows[office.ind]["incomplete_since"] is None
    assert set(r["number"] for r in office.json("dossier", "completeness", "--dept", "dev", who="bob")) == {office.ind}

    f = tmp_path / "contract.txt"
    f.write_text("the contract")
    office.add_doc(office.ent, f, "bob", "contract")
    [row] = office.json("dossier", "completeness", office.ent, who="bob")
    assert row["complete"] and row["fields_checked"]
    assert office.ent not in due(office)
    # Each profile opened for a field check is on the trail, by number.
    v = office.open()
    assert any(e["action"] == "dossier.completeness" and e.get("number") == office.ent for e in audit.entries(v))


def test_non_reader_sees_category_gaps_only(office):
    for who in ("audrey", "lisa", "otto"):
        rows = {r["number"]: r for r in office.json("dossier", "completeness", who=who)}
        bare = rows[office.bare]
        assert bare["missing_categories"] == ["basic-info"] and bare["missing_fields"] == []
        assert not bare["fields_checked"] and "need read access" in bare["note"]
        assert due(office, who)[office.bare]["fields_checked"] is False
    text = office.run("dossier", "completeness", office.bare, who="audrey").stdout
    assert "basic-info" in text and "no read access" in text
    refused(office.run("dossier", "completeness", who="sam", ok=False), "may not review.read")
    refused(office.run("review", "due", who="sam", ok=False), "may not review.read")
    refused(office.run("dossier", "completeness", office.ent, "--dept", "sales", who="bob", ok=False),
            "not both", code=2)


def test_notifications_by_smtp_and_report_files(office, smtp, tmp_path):
    controller, inbox = smtp
    at(office, "2025-01-10")
    sent = office.json("review", "notify", "--notifier", "smtp", "--smtp-host", "127.0.0.1",
                       "--smtp-port", str(controller.port), "--from", "archive@example.org",
                       "--to", "sales=sales@example.org", "--to", "everyone@example.org", who="bob")
    assert {s["dept"]: sorted(s["numbers"]) for s in sent} == {"dev": [office.ind],
                                                                "sales": sorted([office.ent, office.bare])}
    mails = {tuple(rcpts): msg for rcpts, msg in inbox.messages}
    assert set(mails) == {("sales@example.org",), ("everyone@example.org",)}
    sales = mails[("sales@example.org",)]
    assert sales["From"] == "archive@example.org" and "2 dossiers of sales" in sales["Subject"]
    body = sales.get_content()
    assert office.ent in body and office.bare in body and office.ind not in body
    assert "stale since 2024-07-08" in body and "missing categories: contract" in body
    assert "missing fields: contact" in body
    assert office.ind in mails[("everyone@example.org",)].get_content()

    # The same lists as one file per department; never inside the vault.
    reports = tmp_path / "reports"
    reports.mkdir()
    office.run("review", "notify", "--report-dir", str(reports), who="bob")
    files = sorted(p.name for p in reports.iterdir())
    assert files == ["review-2025-01-10-dev.txt", "review-2025-01-10-sales.txt"]
    assert "missing fields: contact" in (reports / "review-2025-01-10-sales.txt").read_text()
    refused(office.run("review", "notify", "--report-dir", str(office.vault_dir / "dossiers"), who="bob", ok=False),
            "inside the vault")
    # Sent by an operator, who holds no read key: categories only, and it says so.
    office.run("review", "notify", "--report-dir", str(reports), "--dept", "sales", who="otto")
    text = (reports / "review-2025-01-10-sales.txt").read_text()
    assert "missing categories: basic-info" in text and "missing fields" not in text and "need read access" in text

    # No customer value in the mails, the reports or the audit trail.
    mail_bytes = tmp_path / "mails.eml"
    mail_bytes.write_bytes(b"".join(m.as_bytes() for _, m in inbox.messages))
    assert scan([mail_bytes, reports, office.vault_dir / "audit"]) == []
    log = [e for e in audit.entries(office.open()) if e["action"] == "review.notify"]
    assert [(e["member"], e["ref"]) for e in log] == [
        ("bob", "dev via smtp"), ("bob", "sales via smtp"), ("bob", "dev via report"), ("bob", "sales via report"),
        ("otto", "sales via report")]


def test_smtp_failure_is_one_line_and_audited(office):
    at(office, "2025-01-10")
    with refused_port() as port:
        res = office.run("review", "notify", "--notifier", "smtp", "--smtp-host", "127.0.0.1",
                         "--smtp-port", str(port), "--from", "archive@example.org", "--to", "x@example.org",
                         who="bob", ok=False)
        refused(res, "smtp: cannot send to 127.0.0.1")
        refused(office.run("review", "notify", "--notifier", "smtp", "--smtp-host", "127.0.0.1", "--from",
                           "a@example.org", "--to", "sales=s@example.org", "--smtp-port", str(port), who="bob",
                           ok=False), "no address for department dev")
    refused(office.run("review", "notify", "--notifier", "pigeon", "--option", "x=1", who="bob", ok=False),
            "not installed")
    last = list(audit.entries(office.open()))
    assert [e["outcome"] for e in last if e["action"] == "review.notify"] == ["failed", "failed"]


def test_destroying_a_dossier_shreds_its_review_notes(office):
    office.add_member("sue", "supervisor", dept="archive")
    office.json("review", "done", office.ind, "--needs-update", "--note", MARKERS["title"], who="bob")
    v = office.open()
    [rec] = [r for p in (office.vault_dir / "reviews").iterdir() for r in reviews.history(v, p.name)]
    bob = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    assert review.read_note(bob, rec) == MARKERS["title"]

    no = office.json("destroy", "request", office.ind, "--reason", "test", who="alice")["number"]
    office.run("destroy", "approve", no, "--override-retention", "test of shredding", who="sue")
    office.run("destroy", "execute", no, who="alice")
    with pytest.raises(ConflictError, match="went with its keys"):
        review.read_note(bob, rec)
    with pytest.raises(VaultError):  # nor round the check: the note's key left with the key table
        read_key_table(v.layout.key_table(rec["dossier"]), bob.read_identities(), dossier=rec["dossier"])
    assert scan(office.vault_dir) == []
    assert office.ind not in due(office)
    refused(office.run("review", "done", office.ind, "--verified", who="bob", ok=False), "has been destroyed")
