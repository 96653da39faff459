"""Disaster-recovery export [R-3.3.1]: the whole vault as age files for an offline recovery key,
approved by two distinct supervisors (told apart by the history's signers), expiring, written once;
the real ``age`` tool opens what it wrote."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from office import MARKERS, PASSPHRASE
from vault.archive import audit, authority, committed
from vault.archive.vault import Actor
from vault.store import identity, records
from vault.store.layout import document_file_name

pytestmark = [pytest.mark.skipif(shutil.which("age") is None, reason="the age tool is installed by dev/setup"),
              pytest.mark.office(("carol", "supervisor", "archive"), ("dave", "supervisor", "archive"),
                                 dossier={"name": MARKERS["name"], "contact": MARKERS["contact"]},
                                 now="2026-03-02T09:00:00")]


@pytest.fixture
def office(office, tmp_path):
    """A contract and a letter, a second dossier, and the recovery key (age-keygen's) of the office."""
    o = office
    o.contract = o.add_text(o.number, MARKERS["content"], "bob", "contract", name="contract.txt")
    o.letter = o.add_text(o.number, "a letter that will be destroyed", "bob", "communication", name="contract.txt")
    o.other = o.create(name="Second Customer Ltd", ctype="individual")
    key = tmp_path / "recovery-key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    o.key = key
    o.recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True,
                                 text=True).stdout.strip()
    o.out = tmp_path / "dr"
    return o


def _request(office, who="alice", *extra) -> str:
    return office.json("export", "disaster-recovery", "request", "--recipient", office.recipient, *extra,
                       who=who)["number"]


def _refused(res, fragment: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert len(lines) == 2 and fragment in lines[0] and lines[1].startswith("vault: hint: "), lines


def _attacker(office, who: str) -> Actor:
    """``who`` acting through the library with their own key, past every check of the command."""
    v = office.open()
    rec = {"name": who, **authority.state(v)["members"][who]}
    return Actor(v, rec, identity.load_identity(office.ident(who), PASSPHRASE))


def _forge_approval(office, who: str, no: str, request_sha256: str | None = None) -> None:
    act = _attacker(office, who)
    req = committed.load(act.vault, f"recovery/{no}.toml")
    rec = act.sign({"format": 1, "export": no, "request_sha256": request_sha256 or
                    hashlib.sha256(records.canonical(req)).hexdigest(), "by": who,
                    "at": office.clock.stamp(), "expires_at": req["expires_at"]})
    with act.vault.lock(exclusive=True):
        audit.commit(act, "recovery.approve", {f"recovery/{no}.approval.toml": records.dump_toml(rec)}, ref=no, obj=no)


def _problems(office) -> list[str]:
    return json.loads(office.run("check", "--json", ok=False).stdout)["problems"]


def _run(office, no: str, who="alice", ok=False):
    return office.run("export", "disaster-recovery", "run", no, "--output", str(office.out), who=who, ok=ok)


# -- the attacker first ---------------------------------------------------------------------------

@pytest.mark.usefixtures("unjudged")
def test_one_supervisor_twice_is_one_approval(office):
    """[R-3.3.1] Two approvals are two signers: the same supervisor twice is one, via the CLI or the library."""
    no = _request(office)
    _refused(office.run("export", "disaster-recovery", "approve", no, who="alice", ok=False),
             "its second approval is another supervisor's")
    _forge_approval(office, "alice", no)  # through the library: the entry counts for nothing
    assert any("recovery.approve by alice): counts for nothing: the second approval" in p for p in _problems(office))
    _refused(_run(office, no), "needs a second supervisor's")
    assert not office.out.exists()


@pytest.mark.usefixtures("unjudged")
def test_a_non_supervisor_neither_asks_approves_nor_writes(office):
    """[R-2.1, R-3.3.1] Only supervisors ask, approve and write; every refusal is in the audit trail."""
    _refused(office.run("export", "disaster-recovery", "request", "--recipient", office.recipient, who="bob",
                        ok=False), "is not a supervisor")
    no = _request(office)
    _refused(office.run("export", "disaster-recovery", "approve", no, who="bob", ok=False), "is not a supervisor")
    office.run("export", "disaster-recovery", "approve", no, who="carol")
    _refused(_run(office, no, who="bob"), "is not a supervisor")
    _refused(_run(office, no, who="dave"), "written by one of the supervisors who approved it")
    refusals = [e for e in office.json("audit", "log", "--member", "bob", who="alice") if e["outcome"] == "refused"]
    assert {e["action"] for e in refusals} >= {"recovery.request", "recovery.approve", "recovery.export"}
    # Through the library with their own key, the archivist's approval entry counts for nothing.
    other = _request(office)
    _forge_approval(office, "bob", other)
    assert any("recovery.approve by bob): counts for nothing: bob is not a supervisor" in p for p in _problems(office))
    _refused(_run(office, other), "needs a second supervisor's")
    assert not office.out.exists()


@pytest.mark.usefixtures("unjudged")
def test_a_former_supervisor_approval_no_longer_counts(office):
    """[R-3.3.1] An approver removed before the export is written voids it; a removed key approves nothing."""
    no = _request(office)
    office.run("export", "disaster-recovery", "approve", no, who="dave")
    office.run("member", "remove", "dave", who="alice")
    _refused(_run(office, no), "approved by dave, who is no longer an active supervisor")
    # Nor can the removed supervisor approve another export with their own key.
    other = _request(office)
    _forge_approval(office, "dave", other)
    assert any("recovery.approve by dave): counts for nothing: dave was removed" in p for p in _problems(office))
    _refused(_run(office, other), "needs a second supervisor's")


def test_an_approval_for_another_export_opens_nothing_here(office, tmp_path):
    """[R-3.3.1] An approval names its export by the request's hash: a copied file or a forged entry opens nothing."""
    first = _request(office)
    office.run("export", "disaster-recovery", "approve", first, who="carol")
    second = _request(office)
    # A copy of the first approval's file approves nothing: the history says who approved what.
    shutil.copy(office.vault_dir / "recovery" / f"{first}.approval.toml",
                office.vault_dir / "recovery" / f"{second}.approval.toml")
    _refused(_run(office, second), "needs a second supervisor's")
    (office.vault_dir / "recovery" / f"{second}.approval.toml").unlink()
    # An approval entry for the second export whose record names the first by its hash is refused.
    req1 = committed.load(office.open(), f"recovery/{first}.toml")
    _forge_approval(office, "carol", second, hashlib.sha256(records.canonical(req1)).hexdigest())
    res = _run(office, second)
    assert res.exit_code == 1 and f"recovery/{second}.approval.toml: approves another export" in res.stderr
    assert not office.out.exists()


def test_recipients_swapped_on_disk_after_approval_receive_nothing(office):
    """[R-1.3.3] Someone who can write the vault directory puts their own key into an approved request: the
    history names the request's bytes, so the export is refused, not written to them."""
    no = _request(office)
    office.run("export", "disaster-recovery", "approve", no, who="carol")
    mine = subprocess.run(["age-keygen"], check=True, capture_output=True, text=True).stdout
    theirs = next(ln.split(": ")[1] for ln in mine.splitlines() if ln.startswith("# public key: "))
    path = office.vault_dir / "recovery" / f"{no}.toml"
    path.write_text(path.read_text().replace(office.recipient, theirs))
    res = _run(office, no)
    assert res.exit_code == 1 and f"recovery/{no}.toml" in res.stderr and "Traceback" not in res.output
    assert not office.out.exists()
    assert any(f"recovery/{no}.toml" in p for p in _problems(office))  # and 'vault check' names it


def test_approvals_expire(office):
    """[R-3.3.1] Each approval expires; an expired request cannot be approved."""
    no = _request(office, "alice", "--valid-for", "2")
    office.run("export", "disaster-recovery", "approve", no, "--valid-for", "1", who="carol")
    office.at("2026-03-02T10:30:00")  # the approval's hour is over, the request's two are not
    _refused(_run(office, no), "expired")
    assert office.json("export", "disaster-recovery", "show", no, who="alice")["state"] == "expired"
    late = _request(office, "alice", "--valid-for", "1")
    office.at("2026-03-02T12:00:00")
    _refused(office.run("export", "disaster-recovery", "approve", late, who="carol", ok=False), "expired")


def test_an_export_signed_to_last_longer_than_the_command_allows_is_refused(office, monkeypatch):
    """[R-3.3.1] A disaster-recovery approval lasts 72 hours at most. A supervisor's library call
    past that bound (a request valid for a year, approved for as long) leaves a whole-vault export
    open for a year: ``show`` and ``approve`` refuse it in one line, nothing is written, ``vault check`` names it."""
    from vault.office import recoveryexport

    most = recoveryexport.MAX_HOURS
    monkeypatch.setattr(recoveryexport, "MAX_HOURS", 24 * 365)
    no = recoveryexport.request(office.actor("alice"), [office.recipient], valid_hours=24 * 365)
    monkeypatch.setattr(recoveryexport, "MAX_HOURS", most)
    rel = f"recovery/{no}.toml"
    _refused(office.run("export", "disaster-recovery", "show", no, who="alice", ok=False), f"{rel}: dated")
    _refused(office.run("export", "disaster-recovery", "approve", no, who="carol", ok=False), f"{rel}: dated")
    _refused(_run(office, no), "")  # (one approval, which the command cannot add)
    assert any(p.startswith(f"{rel}: dated") for p in _problems(office))
    assert not office.out.exists()


# -- what two supervisors get ---------------------------------------------------------------------

def test_the_recovery_key_opens_every_live_document_with_the_age_tool(office):
    """[R-3.3.1, R-3.3.2] Every live document opens with `age -d` and the recovery key; destroyed ones are
    gone; the manifest is signed and checked; an export is written once, outside the vault."""
    office.run("destroy", "request", office.letter, "--reason", "duplicate", who="bob")
    office.run("destroy", "approve", "D-000001", "--override-retention", "duplicate letter", who="alice")
    office.run("destroy", "execute", "D-000001", who="alice")
    no = _request(office)
    office.run("export", "disaster-recovery", "approve", no, who="carol")
    inside = office.run("export", "disaster-recovery", "run", no, "--output", str(office.vault_dir / "dr"),
                        who="alice", ok=False)
    _refused(inside, "inside the vault")
    done = json.loads(office.run("export", "disaster-recovery", "run", no, "--output", str(office.out), "--json",
                                 who="carol").stdout)
    assert (done["state"], done["dossiers"], done["documents"]) == ("written", 2, 1)

    files = sorted(p.relative_to(office.out).as_posix() for p in office.out.rglob("*") if p.is_file())
    assert files == ["MANIFEST.toml", "README.txt", f"documents/{document_file_name(office.contract)}.age",
                     "dossiers.jsonl.age", "files.txt"]
    doc = next(office.out.glob("documents/*.age"))
    plain = subprocess.run(["age", "-d", "-i", str(office.key), str(doc)], check=True, capture_output=True).stdout
    assert plain.decode() == MARKERS["content"]
    lines = subprocess.run(["age", "-d", "-i", str(office.key), str(office.out / "dossiers.jsonl.age")],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    dossiers = {d["number"]: d for d in map(json.loads, lines)}
    assert dossiers[office.number]["profile"]["name"] == MARKERS["name"]
    assert [d["number"] for d in dossiers[office.number]["documents"]] == [office.contract]  # destroyed: gone
    assert dossiers[office.number]["documents"][0]["file"] == doc.relative_to(office.out).as_posix()
    # No customer value in clear anywhere in the export; the manifest is signed by the writer.
    for p in office.out.rglob("*"):
        if p.is_file():
            assert MARKERS["name"].encode() not in p.read_bytes() and MARKERS["content"].encode() not in p.read_bytes()
    rep = office.json("export", "disaster-recovery", "verify", str(office.out), who="alice")
    assert rep["ok"] and rep["files"] == 2 and (rep["requested_by"], rep["approved_by"], rep["exported_by"]) == \
        ("alice", "carol", "carol")
    doc.write_bytes(doc.read_bytes()[:-1] + b"\0")
    res = office.run("export", "disaster-recovery", "verify", str(office.out), ok=False)
    assert res.exit_code == 1 and "changed" in res.stdout

    # Written once; the vault checks clean, and the trail names both approvals and the run.
    shutil.rmtree(office.out)
    _refused(_run(office, no), "already been written")
    assert office.json("check", who="alice")["ok"]
    trail = [(e["action"], e["member"]) for e in office.json("audit", "log", who="alice")
             if e["action"].startswith("recovery.") and e["outcome"] == "ok"]
    assert trail == [("recovery.request", "alice"), ("recovery.approve", "carol"), ("recovery.export", "carol")]


def test_a_failed_export_leaves_nothing_and_runs_again(office):
    """A document missing from the vault stops the export before its entry: no partial output beside
    the destination, nothing recorded, and once the file is back the same approvals still write it."""
    no = _request(office)
    office.run("export", "disaster-recovery", "approve", no, who="carol")
    doc = next((office.vault_dir / "dossiers").rglob("documents/*.age"))
    kept = doc.read_bytes()
    doc.unlink()
    res = _run(office, no)
    assert res.exit_code == 1 and "ciphertext missing" in res.stderr and "Traceback" not in res.output
    assert sorted(p.name for p in office.out.parent.iterdir() if p.name.startswith((".tmp-", "dr"))) == []
    assert office.json("export", "disaster-recovery", "show", no, who="alice")["state"] == "approved"
    doc.write_bytes(kept)
    assert office.json("export", "disaster-recovery", "run", no, "--output", str(office.out),
                       who="alice")["state"] == "written"


@pytest.mark.parametrize("plant", ["file", "directory"])
def test_an_output_that_appears_after_the_check_is_never_replaced_and_keeps_the_export(office, monkeypatch, plant):
    """[R-3.3.1] What is put at the output while the export runs — a second run to the same path, or
    whoever can write the destination — is refused in one line and left as it was; nothing is written
    beside it, the export is not used up, and runs again to a new path."""
    from vault.office import recoveryexport

    no = _request(office)
    office.run("export", "disaster-recovery", "approve", no, who="carol")
    check = recoveryexport.check_destination

    def check_then_plant(v, dest):
        dest = check(v, dest)
        dest.write_text("someone else's file") if plant == "file" else dest.mkdir()
        return dest

    monkeypatch.setattr(recoveryexport, "check_destination", check_then_plant)
    _refused(_run(office, no), "already exists")
    assert (office.out.read_text() == "someone else's file") if plant == "file" else list(office.out.iterdir()) == []
    assert [p.name for p in office.out.parent.iterdir() if p.name.startswith(".tmp-")] == []
    assert office.json("export", "disaster-recovery", "show", no, who="alice")["state"] == "approved"
    monkeypatch.undo()
    office.out = office.out.with_name("dr2")
    assert _run(office, no, ok=True).exit_code == 0


def test_a_payload_changed_past_its_header_is_named_and_written_nowhere(office):
    """[R-3.3.1] The export re-wraps each document without decrypting its payload: a ciphertext
    changed past its header (what whoever can write the vault directory could do) is compared with
    the manifest's hash, named in one line, and the export is neither written nor used up."""
    no = _request(office)
    office.run("export", "disaster-recovery", "approve", no, who="carol")
    doc = max((office.vault_dir / "dossiers").rglob("documents/*.age"), key=lambda p: p.stat().st_size)
    raw = bytearray(doc.read_bytes())
    raw[-20] ^= 1
    doc.write_bytes(bytes(raw))
    res = _run(office, no)
    assert res.exit_code == 1 and "damaged or tampered with" in res.stderr and "Traceback" not in res.output
    assert sorted(p.name for p in office.out.parent.iterdir() if p.name.startswith((".tmp-", "dr"))) == []
    assert office.json("export", "disaster-recovery", "show", no, who="alice")["state"] == "approved"
