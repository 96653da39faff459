"""The trust table covers everything the vault writes, and the whole procedure checks clean.

Plays every procedure once, then: every history entry's action has a row in
``vault.archive.trust.TRUST``; every file under the vault is a known kind (a record that a history
entry must name, or a file that is not a record, each listed in trust.py); every record is named
by the history; and ``vault check`` finds nothing. A new record kind without a row fails here.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from office import MARKERS
from vault.crypto import age
from vault.archive import audit, authority, trust
from vault.archive.vault import Vault


pytestmark = pytest.mark.office(("carol", "supervisor", "archive"), ("head-sales", "dept-head", "sales"),
                                ("staff-sales", "staff", "sales"), ("olga", "operator", "tech"))


@pytest.fixture
def played(office, tmp_path):
    o = office
    o.run("member", "rename", "olga", "--display-name", "奥尔加", who="alice")
    a = o.create(name=MARKERS["name"], contact=MARKERS["contact"])
    b = o.create(name="Second Customer", dept="sales")
    f = tmp_path / "doc.txt"
    f.write_text(MARKERS["content"])
    doc = o.add_doc(a, f)
    o.add_doc(b, f)
    o.run("doc", "event", doc, "contract-fulfilled", "--date", "2026-01-01", who="bob")
    o.run("dossier", "update", a, "--address", MARKERS["address"], who="bob")
    o.run("review", "done", a, "--needs-update", "--note", "check the address", who="bob")
    sid = o.json("intake", "submit", str(f), "--for", a, "--category", "feedback", "--source", "s",
                 "--date", "2026-04-01")["ids"][0]
    o.run("intake", "accept", sid, who="bob")
    sid2 = o.json("intake", "submit", str(f), "--for", a, "--category", "feedback", "--source", "s",
                  "--date", "2026-04-01")["ids"][0]
    o.run("intake", "reject", sid2, "--reason", "duplicate", who="bob")
    req = o.json("request", "access", a, "--purpose", "p", who="staff-sales")["number"]
    o.run("request", "approve", req, who="head-sales")
    g = o.json("grant", req, who="bob")["number"]
    denied = o.json("request", "access", a, "--purpose", "p", who="staff-sales")["number"]
    o.run("request", "deny", denied, "--reason", "no", who="head-sales")
    cp = o.json("request", "copy", doc, "--purpose", "p", who="staff-sales")["number"]
    o.run("request", "approve", cp, who="alice")
    o.run("doc", "export", doc, "--output", str(tmp_path / "bag"), who="staff-sales")
    o.run("grant", "revoke", g, who="bob")
    # Paper originals: located, lent against the approved consultation, returned elsewhere, counted.
    due = o.clock.today_date() + dt.timedelta(days=10)
    o.run("paper", "locate", doc, "--location", "shelf-1", who="bob")
    loan = o.json("paper", "lend", doc, "--to", "staff-sales", "--request", req, "--due", due.isoformat(),
                  who="bob")["number"]
    o.run("paper", "return", loan, "--location", "shelf-2", who="bob")
    o.run("paper", "inventory", "--found", f"{doc}=shelf-2", who="bob")
    req2 = o.json("request", "access", a, "--purpose", "p", who="staff-sales")["number"]
    o.run("request", "approve", req2, who="head-sales")
    o.run("grant", req2, "--hours", "1", who="bob")
    o.later(hours=2)
    assert o.json("grant", "sweep", who="olga")["swept"]
    o.run("hold", "add", b, "--reason", "court", who="bob")
    o.run("hold", "remove", b, "--reason", "settled", who="alice")
    o.run("dossier", "close", b, "--date", "2026-01-02", who="bob")
    o.run("dossier", "reopen", b, who="bob")
    o.run("dossier", "close", b, "--date", "2026-01-03", who="bob")
    cancelled = o.json("destroy", "request", a, "--reason", "spent", who="alice")["number"]
    o.run("destroy", "cancel", cancelled, "--reason", "kept after all", who="alice")
    denied_d = o.json("destroy", "request", a, "--reason", "spent", who="alice")["number"]
    o.run("destroy", "deny", denied_d, "--reason", "still needed", who="carol")
    d = o.json("destroy", "request", b, "--reason", "spent", who="alice")["number"]
    o.run("destroy", "approve", d, "--override-retention", "court order", who="carol")
    o.run("destroy", "execute", d, who="alice")
    recipient = age.recipient_of(age.generate_identity("x25519"))
    dr = o.json("export", "disaster-recovery", "request", "--recipient", recipient, who="alice")["number"]
    o.run("export", "disaster-recovery", "approve", dr, who="carol")
    o.run("export", "disaster-recovery", "run", dr, "--output", str(tmp_path / "dr"), who="alice")
    pol = tmp_path / "policy.toml"
    pol.write_text((o.vault_dir / "policy.toml").read_text())
    o.run("policy", "update", str(pol), who="alice")
    o.run("backup", "run", f"file://{tmp_path / 'offsite'}", who="olga")  # registers the target
    o.run("member", "remove", "staff-sales", who="alice")
    return o


def test_every_action_and_every_file_has_a_row(played):
    v = Vault.open(played.vault_dir)
    actions = {e["action"] for e in audit.entries(v) if e["outcome"] == "ok"}
    assert actions - set(trust.TRUST) <= {"vault.migrate"}, actions - set(trust.TRUST)
    # The procedure above used every writing row (reads are listed for their rights only).
    # intake.invite is played by the portal's tests (tests/test_portal*.py), which check its records.
    writing = {a for a, r in trust.TRUST.items() if r.writes} - {"intake.invite"}
    assert writing <= actions, writing - actions
    unknown = [p.relative_to(played.vault_dir).as_posix() for p in played.vault_dir.rglob("*")
               if p.is_file() and not trust.is_known_file(p.relative_to(played.vault_dir).as_posix())]
    assert unknown == []
    named = authority.state(v)["files"]
    unnamed = [p.relative_to(played.vault_dir).as_posix() for p in played.vault_dir.rglob("*") if p.is_file()
               and trust.is_record(p.relative_to(played.vault_dir).as_posix())
               and p.relative_to(played.vault_dir).as_posix() not in named]
    assert unnamed == []
    rep = json.loads(played.run("check", "--json").stdout)
    assert rep["ok"], rep["problems"]
    assert json.loads(played.run("audit", "verify", "--json").stdout)["ok"]


def test_a_record_kind_without_a_row_fails(played, monkeypatch):
    """Were a writer to add a kind without a row, its entries would count for nothing and check says so."""
    monkeypatch.delitem(trust.TRUST, "hold.add")
    rep = json.loads(played.run("check", "--json", ok=False).stdout)
    assert any("no rule in the trust table for this action" in p for p in rep["problems"]), rep["problems"]


def test_an_interrupted_commit_is_finished_or_dropped(played, monkeypatch):
    """Staged files named by a committed entry are promoted by the next writer; others are dropped."""
    from vault.store import identity

    from office import PASSPHRASE

    v = Vault.open(played.vault_dir)
    bob = v.act_as(identity.load_identity(played.ident("bob"), PASSPHRASE))
    a = next(iter(authority.state(v)["numbers"]))
    real_replace = __import__("os").replace
    calls = []

    def crash(src, dst):
        if not str(src).endswith(".pending"):
            return real_replace(src, dst)
        calls.append(dst)
        raise KeyboardInterrupt  # the process dies after the entry, before the rename

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        played_hold = bob.vault
        from vault.office import holds

        holds.add(bob, a, "interrupted")
    monkeypatch.setattr("os.replace", real_replace)
    assert calls and list(played.vault_dir.glob("holds/*.pending"))
    # Readers already see the committed hold; the next writer finishes the rename.
    assert played_hold is bob.vault
    played.run("dossier", "close", a, "--date", "2026-02-01", who="bob")
    assert not list(played.vault_dir.glob("holds/*.pending"))
    assert json.loads(played.run("check", "--json").stdout)["ok"]
    # A staged file no entry names, of a commit stopped before its entry (the staging journal names
    # what it staged), is a leftover: dropped. (One the journal does not name: tests/test_staging_journal.py.)
    from vault.store import staging

    stray = played.vault_dir / "holds" / ("0" * 32 + ".toml.pending")
    staging.note(played.vault_dir, ["holds/" + "0" * 32 + ".toml"])
    stray.write_text("x")
    played.run("hold", "remove", a, "--reason", "done", who="alice")
    assert not stray.exists()


def test_every_test_security_md_names_exists():
    """SECURITY.md names the test proving each promise; a renamed or deleted test fails here."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    text = (repo / "SECURITY.md").read_text(encoding="utf-8")
    named = re.findall(r"(test_[a-z0-9_]+\.py)::(test_[a-z0-9_]+)", text)
    assert len(named) >= 30
    for file, test in named:
        src = (repo / "tests" / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", src, re.M), f"SECURITY.md names {file}::{test}, which does not exist"
