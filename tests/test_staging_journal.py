"""Taking the exclusive lock finishes what the last commit staged from the staging journal, without
walking the vault; a forged journal changes no record and reaches nothing outside the vault; ``vault
repair`` still walks everything (FORMAT §18.5)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from office import make_office
from vault.archive import authority
from vault.archive.vault import Vault
from vault.store import WORK_DIR, seam, staging


@pytest.fixture
def office(tmp_path, monkeypatch):
    o = make_office(tmp_path, monkeypatch)
    o.number = o.create(name="Journal Customer")
    return o


def _manifest_rel(office) -> str:
    v = Vault.open(office.vault_dir)
    return f"dossiers/{authority.state(v)['numbers'][office.number]}/manifest.toml"


def test_a_commit_stopped_after_its_entry_is_finished_from_the_journal(office, tmp_path):
    """Stopped between the entry and the renames: the journal names the staged manifest; the next
    writer renames it into place, and empties the journal."""
    f = tmp_path / "a.txt"
    f.write_text("a document\n")
    rel = _manifest_rel(office)
    state_dir = Path(os.environ["VAULT_STATE_DIR"])
    shutil.copytree(office.vault_dir, tmp_path / "vault-before", symlinks=True)
    shutil.copytree(state_dir, tmp_path / "state-before", symlinks=True)
    trace: list[tuple[str, str]] = []
    seam.arm(0, trace=trace)
    office.add_doc(office.number, f)
    seam.disarm()
    kinds = [k for k, _ in trace]
    assert kinds.index("journal") < min(i for i, (k, p) in enumerate(trace) if k == "create" and ".pending" in p)
    at = next(i for i, (k, p) in enumerate(trace, 1) if k == "rename" and p.endswith(rel))
    assert at > kinds.index("append") + 1
    for src, dst in ((tmp_path / "vault-before", office.vault_dir), (tmp_path / "state-before", state_dir)):
        shutil.rmtree(dst)
        shutil.copytree(src, dst, symlinks=True)
    pid = os.fork()
    if pid == 0:  # the child: the same add on the same state, stopped just before that rename
        seam.arm(at)
        try:
            office.add_doc(office.number, f)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == seam.CRASH_EXIT
    assert rel in staging.read(office.vault_dir)
    assert (office.vault_dir / (rel + ".pending")).exists()
    assert office.json("check", who="bob")["ok"]
    office.run("dossier", "list", who="bob")  # a read: the lock is not taken, nothing is finished
    assert (office.vault_dir / (rel + ".pending")).exists()
    office.add_doc(office.number, f)  # the next writer
    assert not (office.vault_dir / (rel + ".pending")).exists()
    assert staging.read(office.vault_dir) == []
    assert len(office.json("doc", "list", office.number, who="bob")) == 2
    assert office.json("check", who="bob")["ok"]


def test_the_lock_looks_only_where_the_journal_points_and_repair_walks_everything(office):
    """A staged record and a temporary beside a file that no journal names (left by an older version,
    or after a lost journal) are not looked for by every writer; ``check`` notes them and ``vault
    repair`` removes them."""
    rel = _manifest_rel(office)
    stray_pending = office.vault_dir / (rel + ".pending")
    stray_pending.write_bytes(b"format = 1\n")
    stray_tmp = office.vault_dir / "dossiers" / f".tmp-manifest.toml.{'ab' * 4}"
    stray_tmp.write_bytes(b"half")
    office.create(name="Another Customer")  # a writer
    assert stray_pending.exists() and stray_tmp.exists()
    rep = office.json("check", who="bob")
    assert rep["ok"] and any(rel in n for n in rep["notes"]) and any(stray_tmp.name in n for n in rep["notes"])
    office.run("repair", who="bob")
    assert not stray_pending.exists() and not stray_tmp.exists()
    assert office.json("check", who="bob")["ok"]


@pytest.mark.parametrize("line", ["../outside.toml", "/etc/x", "dossiers/../../outside.toml", "a//b", "",
                                  "dossiers/\u00e9.toml", "x" * 300 + "/../y"])
def test_a_forged_journal_line_reaches_nothing_outside_the_vault(office, tmp_path, line):
    outside = tmp_path / "outside.toml"
    outside.write_text("mine")
    (tmp_path / "outside.toml.pending").write_text("mine too")
    with open(staging.path(office.vault_dir), "ab") as f:
        f.write(line.encode() + b"\n")
    assert staging.read(office.vault_dir) == []
    office.create(name="Third Customer")
    assert outside.read_text() == "mine" and (tmp_path / "outside.toml.pending").read_text() == "mine too"
    assert office.json("check", who="bob")["ok"]


def test_a_journal_through_a_linked_directory_is_refused(office, tmp_path):
    """A record directory replaced by a symbolic link: a journal line under it is refused, not followed."""
    away = tmp_path / "away"
    away.mkdir()
    (away / "R-000001.toml.pending").write_text("not the vault's")
    (office.vault_dir / "requests").rmdir() if (office.vault_dir / "requests").is_dir() else None
    (office.vault_dir / "requests").symlink_to(away)
    with open(staging.path(office.vault_dir), "ab") as f:
        f.write(b"requests/R-000001.toml\n")
    res = office.run("dossier", "create", "--type", "enterprise", "--business", "network-services", "--dept",
                     "sales", "--name", "Linked", who="bob", ok=False)
    assert res.exit_code != 0 and "symbolic link" in res.stderr and "Traceback" not in res.output
    assert (away / "R-000001.toml.pending").read_text() == "not the vault's"


def test_the_work_directory_replaced_by_a_link_is_refused(office, tmp_path):
    away = tmp_path / "away"
    away.mkdir()
    work = office.vault_dir / WORK_DIR
    for p in work.iterdir():
        p.unlink()
    work.rmdir()
    work.symlink_to(away)
    res = office.run("dossier", "create", "--type", "enterprise", "--business", "network-services", "--dept",
                     "sales", "--name", "Linked", who="bob", ok=False)
    assert res.exit_code != 0 and WORK_DIR in res.stderr and "Traceback" not in res.output
    assert list(away.iterdir()) == []
