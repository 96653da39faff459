"""Hostile files: a forged backup target, hand-edited records, foreign audit lines, symbolic links.

Whoever can write the vault directory or a backup target writes these; each ends in one clear line
naming the file, never a traceback, and nothing is written outside its directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from backup_helpers import dossier_id
from office import SALES_DESK
from test_hostile_cli import assert_refused_cleanly, digest
from vault.archive import audit
from vault.backup.repo import Repo
from vault.crypto import age
from vault.archive.vault import Vault


pytestmark = pytest.mark.office(*SALES_DESK, dossier={"name": "Files Customer"}, doc="first document\n")


def _forge_snapshot(o, url: str, *, files=None, keys=None) -> None:
    """What the owner of a target can do: write a tree encrypted to the ring's public recipient (it is
    in rings/archive.toml, in every snapshot) and a snapshot naming it, newer than the real one."""
    repo = Repo(url)
    real = repo.resolve("latest")
    ring = tomllib.loads((o.vault_dir / "rings" / "archive.toml").read_text())["recipient"]
    blob = next(iter(real["other"]))
    tree = {"format": 1, "vault_id": real["vault_id"], "files": files(blob) if files else [],
            "keys": keys or {}}
    data = age.encrypt_bytes(json.dumps(tree).encode(), [age.parse_recipient(ring)])
    tid = hashlib.sha256(data).hexdigest()
    repo.put("trees/" + tid, data)
    snap = {k: v for k, v in real.items() if k != "id"}
    snap.update(tree=tid, time="2099-01-01T00:00:00Z")
    repo.put_json("snapshots/", snap)


@pytest.mark.parametrize("case", ["file-dotdot", "file-absolute", "key-dotdot", "key-absolute", "key-not-a-table"])
def test_restore_from_a_forged_target_writes_nothing_outside(office, tmp_path, case):
    url = f"file://{tmp_path / 'target'}"
    office.run("backup", "run", url)
    table = f"{dossier_id(office, office.number)}.age"
    escape = tmp_path / "escaped"
    forged = {
        "file-dotdot": dict(files=lambda b: [["../escaped", b, 1, 0o644]]),
        "file-absolute": dict(files=lambda b: [[str(escape), b, 1, 0o644]]),
        # The table name is what follows five characters: "../e/" and "/tmp/" pass for "keys/".
        "key-dotdot": dict(keys={f"../e/{table}": "0" * 64}),
        "key-absolute": dict(keys={f"/tmp/{table}": "0" * 64}),
        "key-not-a-table": dict(keys={"keys/../../escaped": "0" * 64}),
    }[case]
    _forge_snapshot(office, url, **forged)
    dest = tmp_path / "restored"
    before = sorted(p.name for p in tmp_path.iterdir())
    res = office.run("backup", "restore", url, "latest", str(dest), who="bob", ok=False)
    assert_refused_cleanly(res, case)
    assert "tampered" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "restored") == [n for n in before if n != "restored"]
    assert not (tmp_path / "e").exists() and not Path(f"/tmp/{table}").exists()
    assert not dest.exists() or not any(dest.rglob("*"))


def test_restore_refuses_a_symbolic_link_on_the_way(office, tmp_path):
    url = f"file://{tmp_path / 'target'}"
    office.run("backup", "run", url)
    _forge_snapshot(office, url, files=lambda b: [["link/x", b, 1, 0o644]])
    dest = tmp_path / "restored"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "link").symlink_to(outside)  # dest must be empty: a link is refused there too
    res = office.run("backup", "restore", url, "latest", str(dest), who="bob", ok=False)
    assert_refused_cleanly(res, "symlink")
    assert not any(outside.iterdir())


def test_doc_view_and_export_refuse_the_vault_directory_through_a_link(office, tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to(office.vault_dir / "dossiers")
    before = digest(office.vault_dir)
    for args in (["doc", "view", office.doc, "--output", str(link / "plain.txt")],
                 ["doc", "view", office.doc, "--output", str(office.vault_dir / "plain.txt")],
                 ["dossier", "export", office.number, "--format", "json", "--no-sealed", "--output",
                  str(link / "cat.json")]):
        res = office.run(*args, who="bob", ok=False)
        assert_refused_cleanly(res, " ".join(args[:2]))
        assert "inside the vault" in res.stderr
    assert {k: v for k, v in digest(office.vault_dir).items() if not k.startswith("audit/")} == \
        {k: v for k, v in before.items() if not k.startswith("audit/")}


def test_a_symlinked_audit_log_is_not_followed(office, tmp_path):
    log = office.vault_dir / "audit" / "log.jsonl"
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(log.read_bytes())
    log.unlink()
    log.symlink_to(elsewhere)
    res = office.run("doc", "view", office.doc, "--output", str(tmp_path / "out"), who="bob", ok=False)
    assert_refused_cleanly(res, "symlinked log")
    assert "symbolic link" in res.stderr and not (tmp_path / "out").exists()
    assert elsewhere.read_bytes() == log.read_bytes()  # nothing appended through the link
    res = office.run("audit", "verify", ok=False)
    assert res.exit_code == 1 and "symbolic link" in res.stdout and "Traceback" not in res.output


@pytest.mark.parametrize("line", [b"[1, 2]", b'"text"', b"{}", b"\xff\xfe", b'{"seq": 1, "member": ["x"]}',
                                  b"not json at all"])
def test_a_foreign_line_in_the_audit_log_is_named(office, line):
    log = office.vault_dir / "audit" / "log.jsonl"
    n = len(log.read_bytes().splitlines())
    with open(log, "ab") as f:
        f.write(line + b"\n")
    for args in (["audit", "verify"], ["check"]):
        res = office.run(*args, ok=False)
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert f"audit/log.jsonl line {n + 1}" in res.stdout, res.output
    assert_refused_cleanly(office.run("audit", "log", who="alice", ok=False), "audit log")


def test_a_newline_in_a_value_forges_no_audit_line(office):
    # A refused action logs the number the member typed, newline and all: JSON escapes it.
    forged = 'X\n{"seq": 99, "member": "alice", "action": "doc.view"}'
    res = office.run("request", "access", forged, "--purpose", "p", who="alice", ok=False)
    assert_refused_cleanly(res, "newline number")
    res = office.run("hold", "add", forged, "--reason", "r", who="staff", ok=False)  # refused by role: logged
    assert_refused_cleanly(res, "newline number")
    lines = (office.vault_dir / "audit" / "log.jsonl").read_bytes().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, len(lines) + 1))
    assert audit.verify(Vault.open(office.vault_dir)).ok
    # The typed text is not kept (it could be a customer's name), and the listing is a line per entry.
    assert b"forged" not in b"".join(lines) and b"(invalid)" in lines[-1]
    shown = office.run("audit", "log", who="alice").stdout.splitlines()
    assert len(shown) == len(lines) and all(s.split()[0].isdigit() for s in shown)


def _record(office, kind: str) -> Path:
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff")["number"]
    office.run("request", "approve", req, who="head")
    return {"request": office.vault_dir / "requests" / f"{req}.toml",
            "decision": office.vault_dir / "requests" / f"{req}.decision.toml"}[kind]


@pytest.mark.parametrize("kind", ["request", "decision"])
@pytest.mark.parametrize("edit", ["datetime", "nested-table", "array", "integer"])
def test_a_hand_edited_record_is_one_clear_line(office, kind, edit):
    p = _record(office, kind)
    field = "created_at" if kind == "request" else "at"
    new = {"datetime": f"{field} = 2026-01-01T00:00:00Z", "nested-table": f"{field} = {{ a = {{ b = 1 }} }}",
           "array": f"{field} = [1, [2]]", "integer": f"{field} = 7"}[edit]
    text = "\n".join(new if ln.startswith(f"{field} =") else ln for ln in p.read_text().splitlines())
    p.write_text(text + "\n")
    req = p.name.split(".")[0]
    res = office.run("request", "show", req, ok=False)
    assert_refused_cleanly(res, f"{kind} {edit}")
    assert req in res.stderr
    rep = office.run("check", ok=False)
    assert rep.exit_code == 1 and req in rep.stdout and "Traceback" not in rep.output


def test_a_signed_record_of_another_kind_is_no_hold(office):
    """A request record is signed and has a ``dossier`` field; copied into holds/ it holds nothing."""
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff")["number"]
    did = dossier_id(office, office.number)
    (office.vault_dir / "holds").mkdir(mode=0o700, exist_ok=True)
    (office.vault_dir / "holds" / f"{did}.toml").write_bytes(
        (office.vault_dir / "requests" / f"{req}.toml").read_bytes())
    # Holds are facts of the history: the planted file holds nothing, and check names it.
    assert office.json("hold", "list", who="alice") == []
    rep = office.run("check", ok=False)
    assert rep.exit_code == 1 and f"holds/{did}.toml" in rep.stdout


def test_a_hold_signed_by_someone_other_than_its_placer_is_refused(office):
    office.run("hold", "add", office.number, "--reason", "litigation", who="alice")
    did = dossier_id(office, office.number)
    p = office.vault_dir / "holds" / f"{did}.toml"
    p.write_text(p.read_text().replace('by = "alice"', 'by = "bob"', 1))
    res = office.run("hold", "list", who="alice", ok=False)
    assert_refused_cleanly(res, "hold by")


def test_a_forged_index_entry_cannot_point_outside(office):
    from vault.store.index import _number_path

    p = _number_path(office.vault_dir, office.number)
    p.write_text(f"{office.number}\n../../../etc\n")
    # Numbers resolve through the history's dossier.create entries; the index is only a hint.
    assert office.json("dossier", "show", office.number, who="bob")["number"] == office.number


def test_a_tampered_backups_toml_is_one_line(office, tmp_path):
    (office.vault_dir / "backups.toml").write_text("format = 1\n[[targets]]\nurl = 1979-05-27T07:32:00Z\n")
    res = office.run("backup", "run", f"file://{tmp_path / 'target'}", ok=False)
    assert_refused_cleanly(res, "backups.toml")
    assert "backups.toml" in res.stderr


@pytest.mark.parametrize("which", ["holds", "dossier", "documents"])
def test_a_vault_directory_replaced_by_a_link_carries_no_write_out(office, tmp_path, which):
    did = dossier_id(office, office.number)
    place = {"holds": office.vault_dir / "holds", "dossier": office.vault_dir / "dossiers" / did,
             "documents": office.vault_dir / "dossiers" / did / "documents"}[which]
    outside = tmp_path / "outside"
    if place.exists():
        shutil.copytree(place, outside)
        shutil.rmtree(place)
    else:
        outside.mkdir()
    place.symlink_to(outside)
    before = digest(outside)
    f = tmp_path / "b.txt"
    f.write_text("second\n")
    args = {"holds": ["hold", "add", office.number, "--reason", "litigation"],
            "dossier": ["doc", "add", office.number, str(f), "--category", "other", "--source", "s",
                        "--date", "2026-01-01", "--original"]}
    args["documents"] = args["dossier"]
    res = office.run(*args[which], who="alice", ok=False)
    assert_refused_cleanly(res, which)
    assert "symbolic link" in res.stderr
    assert digest(outside) == before


def test_every_lock_wait_ends_with_a_message(office):
    from vault.errors import LockError
    from vault.store.locking import VaultLock, close_lock, open_lock

    v = Vault.open(office.vault_dir)
    held = open_lock(office.vault_dir / ".lock", exclusive=True, wait=1, what="test")
    try:
        with pytest.raises(LockError, match=r"the vault is locked by another command \(waited 0.1 s\)"):
            with VaultLock(office.vault_dir, exclusive=False, wait=0.1):
                pass
    finally:
        close_lock(held)
    held = open_lock(office.vault_dir / "audit" / ".lock", exclusive=True, wait=1, what="test")
    try:
        with pytest.raises(LockError, match="the audit trail is locked"):
            with audit.lock(v, exclusive=False, wait=0.1):
                pass
    finally:
        close_lock(held)


def test_a_hand_edited_intake_record_is_named_by_check(office, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("submitted\n")
    sid = office.json("intake", "submit", str(f), "--for", office.number, "--category", "other", "--source", "s",
                      "--date", "2026-01-01")["ids"][0]
    p = office.vault_dir / "intake" / f"{sid}.toml"
    p.write_text(p.read_text().replace('date = "2026-01-01"', "date = 2026-01-01"))
    rep = office.run("check", ok=False)
    assert rep.exit_code == 1 and f"intake/{sid}.toml" in rep.stdout and "Traceback" not in rep.output
    assert_refused_cleanly(office.run("intake", "accept", sid, who="bob", ok=False), "intake accept")
