"""Backups witness the history: a run records the checkpoint at the target and refuses one that goes back.

Played as someone who can write the vault directory but not the backup target: they cut the
history's tail and re-sign its checkpoint with their own key, or put an older copy of the whole
vault back. A client that never saw the vault (a fresh state directory: the backup host's own
cron job) is warned by the target alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from backup_helpers import cut_tail
from vault.archive.vault import Vault
from office import MARKERS, Office
from vault.backup.repo import SNAPSHOTS, Repo


pytestmark = pytest.mark.office(("staff-sales", "staff", "sales"),
                                dossier={"name": MARKERS["name"], "contact": MARKERS["contact"]}, doc=MARKERS["content"])


def _fresh(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of a client that never saw this vault: only the target remembers."""
    return {"VAULT_STATE_DIR": str(tmp_path / "clients" / name)}


def history_count(o: Office, vault_dir: Path | None = None) -> int:
    return len(((vault_dir or o.vault_dir) / "audit" / "log.jsonl").read_bytes().splitlines())


def assert_no_plaintext(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for m in MARKERS.values():
                assert m.encode() not in data, (p, m)


def refused_as_rollback(res, target: str) -> None:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    err = res.stderr.splitlines()
    assert err[0].startswith("vault: error: ") and "history cut or rolled back" in err[0], res.stderr
    assert "backup target" in err[0] and target in err[0], res.stderr
    assert len(err) == 2 and err[1].startswith("vault: hint: "), res.stderr


def test_a_cut_history_is_refused_by_the_target_it_was_backed_up_to(office, tmp_path):
    """[issue 14 property 5] a cut tail re-signed by a member is caught by the backup target."""
    target = f"file://{tmp_path / 'target'}"
    office.run("backup", "run", target)
    office.create(name="Second Customer")  # more history, then backed up again
    before = history_count(office)
    office.run("backup", "run", target)
    snaps = Repo(target).snapshot_ids()
    cut_tail(office, before - 2)
    res = office.run("backup", "run", target, ok=False, env=_fresh(tmp_path, "cron"))
    refused_as_rollback(res, target)
    assert f"entry {before}" in res.stderr
    assert Repo(target).snapshot_ids() == snaps  # nothing was recorded from the cut vault
    assert_no_plaintext(tmp_path / "target")


def test_a_whole_vault_put_back_older_is_refused(office, tmp_path):
    """[issue 14 property 5] an older copy of the whole directory (every record consistent) is caught."""
    target = f"file://{tmp_path / 'target'}"
    old = tmp_path / "old-copy"
    shutil.copytree(office.vault_dir, old, symlinks=True)
    office.run("backup", "run", target)
    office.create(name="Later Customer")
    office.run("backup", "run", target)
    shutil.rmtree(office.vault_dir)
    shutil.copytree(old, office.vault_dir, symlinks=True)
    res = office.run("backup", "run", target, ok=False, env=_fresh(tmp_path, "cron"))
    refused_as_rollback(res, target)


def test_the_recorded_checkpoint_is_the_vaults_and_is_reported(office, tmp_path):
    target = f"file://{tmp_path / 'target'}"
    out = json.loads(office.run("backup", "run", target, "--json").stdout)
    log = (office.vault_dir / "audit" / "log.jsonl").read_bytes().splitlines()
    head = hashlib.sha256(log[-1]).hexdigest()
    assert out["history"] == {"count": len(log), "head": head}
    snap = Repo(target).get_json(SNAPSHOTS + out["snapshot"])
    assert snap["history"] == {"count": len(log), "head": head}
    ver = json.loads(office.run("backup", "verify", target, "--json").stdout)
    assert ver["ok"] and ver["history"]["count"] == len(log) and ver["history"]["head"] == head
    # The head entry is kept beside it: it is signed by its member, and hashes to the head.
    rec = json.loads(Repo(target).get("history"))
    assert hashlib.sha256(rec["entry"].encode()).hexdigest() == head
    assert json.loads(rec["entry"])["seq"] == len(log)
    text = office.run("backup", "verify", target).stdout
    assert f"history: entry {len(log)} ({head[:16]}" in text
    rest = json.loads(office.run("backup", "restore", target, "latest", str(tmp_path / "r"), "--json",
                                 who="bob").stdout)
    assert rest["history"] == {"count": len(log), "head": head}
    # A vault that moved on is backed up again: it extends what the target recorded.
    office.create(name="Third Customer")
    again = json.loads(office.run("backup", "run", target, "--json", env=_fresh(tmp_path, "cron")).stdout)
    assert again["history"]["count"] > len(log)


def test_the_witness_record_damaged_on_the_target_is_named_by_verify(office, tmp_path):
    target = f"file://{tmp_path / 'target'}"
    office.run("backup", "run", target)
    repo = Repo(target)
    rec = json.loads(repo.get("history"))
    rec["head"] = "0" * 64
    repo.put("history", json.dumps(rec).encode(), create_only=False)
    res = office.run("backup", "verify", target, ok=False)
    assert res.exit_code == 1 and "problem: history:" in res.stdout
    res = office.run("backup", "run", target, ok=False, env=_fresh(tmp_path, "cron"))
    assert res.exit_code == 1 and "vault: error: " in res.stderr and "Traceback" not in res.output


def test_restoring_an_older_snapshot_is_legitimate_when_said_so(office, tmp_path):
    """An older snapshot restored on purpose goes back to its target only with --restored-from,
    which is recorded there for every later 'backup verify' to report."""
    target = f"file://{tmp_path / 'target'}"
    first = json.loads(office.run("backup", "run", target, "--json").stdout)["snapshot"]
    office.create(name="Later Customer")
    office.run("backup", "run", target)
    dest = tmp_path / "restored"
    office.run("backup", "restore", target, first[:8], str(dest), who="bob")
    res = office.run("--vault", str(dest), "backup", "run", target, ok=False)
    refused_as_rollback(res, target)
    assert "--restored-from" in res.stderr
    # A snapshot the restored vault does not extend is no excuse.
    later = [s for s in Repo(target).snapshot_ids() if s != first][0]
    res = office.run("--vault", str(dest), "backup", "run", target, "--restored-from", later[:8], ok=False)
    assert res.exit_code == 1 and "does not extend" in res.stderr, res.output
    out = json.loads(office.run("--vault", str(dest), "backup", "run", target, "--restored-from", first[:8],
                                "--json").stdout)
    assert out["history"]["count"] == history_count(office, dest)
    ver = json.loads(office.run("backup", "verify", target, "--json").stdout)
    assert ver["ok"], ver
    assert any("went back" in n and first[:8] in n for n in ver["notes"]), ver["notes"]
    assert len(ver["history"]["rollbacks"]) == 1
    # From then on the restored vault is the one the target follows.
    office.run("--vault", str(dest), "backup", "run", target)


def test_a_run_that_captured_less_never_moves_the_witness_back(office, tmp_path):
    """Two runs at once: the one that captured a shorter history and finishes last records nothing."""
    from vault.backup import history

    target = f"file://{tmp_path / 'target'}"
    office.run("backup", "run", target)
    lines = (office.vault_dir / "audit" / "log.jsonl").read_bytes().splitlines()
    shorter = history.History(b"\n".join(lines[:-1]) + b"\n").point()
    repo = Repo(target)
    v = Vault.open(office.vault_dir)
    history.record(repo, v.config["id"], shorter, "0" * 64, None, now=v.clock.now())
    assert json.loads(repo.get("history"))["count"] == len(lines)


def test_a_snapshot_whose_recorded_checkpoint_is_not_its_history_is_named(office, tmp_path):
    """The target's owner rewrites a snapshot to record a shorter history (so that a cut vault
    would pass with --restored-from): 'backup verify --read-data' compares it with the log inside."""
    target = f"file://{tmp_path / 'target'}"
    sid = json.loads(office.run("backup", "run", target, "--json").stdout)["snapshot"]
    assert "no problems" in office.run("backup", "verify", target, "--read-data", who="bob").stdout
    repo = Repo(target)
    snap = repo.get_json(SNAPSHOTS + sid)
    snap["history"] = {"count": snap["history"]["count"] - 1, "head": "0" * 64}
    forged = repo.put_json(SNAPSHOTS, snap)
    repo.delete(SNAPSHOTS + sid)
    res = office.run("backup", "verify", target, "--read-data", who="bob", ok=False)
    assert res.exit_code == 1, res.output
    assert f"problem: snapshot {forged[:8]}: its audit log is not the history whose checkpoint it records" in res.stdout
