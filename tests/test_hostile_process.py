"""Hostile conditions that need a process of their own: argv bytes, a full disk, a read-only vault,
parallel writers beside the verifiers."""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backup_helpers import tree_digest
from office import PASSPHRASE, SALES_DESK
from test_hostile_cli import assert_refused_cleanly, digest
from vault.archive import audit, authority, committed
from vault.archive.vault import Vault
from vault.office import access
from vault.store import identity


pytestmark = pytest.mark.office(*SALES_DESK, dossier={"name": "Process Customer"}, doc="first document\n")


class Proc:
    """What ``subprocess.run`` gave, shaped like a CliRunner result for ``assert_refused_cleanly``."""

    def __init__(self, p: subprocess.CompletedProcess) -> None:
        self.exit_code, self.exception = p.returncode, None
        self.stdout, self.stderr = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        self.output = self.stdout + self.stderr


def vault_cmd(office, *args, who: str | None = "bob", root: Path | None = None, preexec=None, env=None,
              wrap: list[str] = ()) -> Proc:
    root = root or office.root
    e = dict(os.environ, VAULT_DIR=str(root / "vault"), VAULT_PASSPHRASE_FILE=str(root / "pass"))
    e.pop("VAULT_IDENTITY", None)
    if who:
        e["VAULT_IDENTITY"] = str(root / "ids" / f"{who}.key")
    e.update(env or {})
    argv = [*map(os.fsencode, wrap), os.fsencode(sys.executable), b"-m", b"vault", *(a if isinstance(a, bytes) else a.encode() for a in args)]
    return Proc(subprocess.run(argv, env=e, capture_output=True, preexec_fn=preexec, timeout=120,
                               cwd=Path(__file__).parent.parent))


def test_undecodable_argv_bytes_are_one_line(office):
    """Linux passes argv as bytes; Python decodes what is not UTF-8 into lone surrogates."""
    before = digest(office.vault_dir)
    for args in ([b"dossier", b"show", b"E-\xff\xfe"], [b"request", b"access", office.number.encode(),
                                                          b"--purpose", b"caf\xe9"]):
        res = vault_cmd(office, *args, who="staff")
        assert_refused_cleanly(res, repr(args))
        assert "not valid UTF-8" in res.stderr
    assert digest(office.vault_dir) == before


def _fsize_limit(limit: int):
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


def test_a_full_disk_is_one_line_and_changes_nothing(office, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    before = digest(office.vault_dir)
    res = vault_cmd(office, "doc", "add", office.number, str(big), "--category", "other", "--source", "s",
                    "--date", "2026-01-01", "--original", preexec=_fsize_limit(1 << 20))
    assert_refused_cleanly(res, "doc add on a full disk")
    after = digest(office.vault_dir)
    # What the refused command could not finish is gone; the audit trail may say it was refused.
    assert {k: v for k, v in after.items() if not k.startswith("audit/")} == \
        {k: v for k, v in before.items() if not k.startswith("audit/")}
    assert vault_cmd(office, "check").exit_code == 0


def test_a_short_write_to_the_audit_log_is_cut_off_again(office, tmp_path):
    log = office.vault_dir / "audit" / "log.jsonl"
    size = log.stat().st_size
    res = vault_cmd(office, "doc", "view", office.doc, "--output", str(tmp_path / "out.txt"),
                    preexec=_fsize_limit(size + 40))  # room for part of one entry only
    assert_refused_cleanly(res, "doc view with the audit log full")
    assert log.stat().st_size == size  # no half line left behind
    assert not (tmp_path / "out.txt").exists()  # nothing shown that was not logged
    check = vault_cmd(office, "check", "--json", who=None)
    assert check.exit_code == 0, check.output
    assert vault_cmd(office, "doc", "view", office.doc, "--output", str(tmp_path / "out.txt")).exit_code == 0


@pytest.fixture
def readonly(office, tmp_path):
    """A copy of the office whose vault is read-only to the commands: a read-only bind mount in a
    mount namespace of their own when run as root (permissions do not stop root), else its modes."""
    root = tmp_path / "ro"
    shutil.copytree(office.vault_dir, root / "vault")
    shutil.copytree(office.root / "ids", root / "ids")
    shutil.copy(office.root / "pass", root / "pass")
    if os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-m", "sh", "-c", _RO_MOUNT + " true", str(root / "vault")],
                               capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"root without mount namespaces cannot make a read-only vault: {probe.stderr!r}")
        yield root, ["unshare", "-m", "sh", "-c", _RO_MOUNT + ' "$@"', str(root / "vault")]
        return
    for p in [root / "vault", *(root / "vault").rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    yield root, []
    for p in [root / "vault", *(root / "vault").rglob("*")]:
        p.chmod(p.stat().st_mode | 0o700)


_RO_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec'


def test_check_and_audit_verify_work_on_a_read_only_vault(office, readonly):
    root, wrap = readonly
    before = digest(root / "vault")
    for args in (["check", "--json"], ["audit", "verify", "--json"], ["dossier", "list"]):
        res = vault_cmd(office, *args, who=None, root=root, wrap=wrap)
        assert res.exit_code == 0, f"{args}: {res.output}"
    assert json.loads(vault_cmd(office, "check", "--json", who=None, root=root, wrap=wrap).stdout)["ok"]
    res = vault_cmd(office, "dossier", "create", "--type", "individual", "--business", "b", "--dept", "sales",
                    "--name", "Nobody", who="bob", root=root, wrap=wrap)
    assert_refused_cleanly(res, "dossier create on a read-only vault")
    assert "Read-only file system" in res.stderr or "Permission denied" in res.stderr
    assert digest(root / "vault") == before


def _append_many(args) -> int:
    vault_dir, ident_path, n = args
    identity.SCRYPT_WORK_FACTOR = 10
    actor = Vault.open(Path(vault_dir)).act_as(identity.load_identity(Path(ident_path), PASSPHRASE))
    for _ in range(n):
        audit.record(actor, "vault.open")  # an action that writes nothing, open to any member
    return n


def test_audit_verify_raises_no_false_alarm_beside_appenders(office):
    ctx = multiprocessing.get_context("spawn")
    v = Vault.open(office.vault_dir)
    with ctx.Pool(3) as pool:
        pending = pool.map_async(_append_many, [(str(office.vault_dir), str(office.ident("bob")), 40)] * 3)
        checks = 0
        while not pending.ready() or checks < 3:
            res = audit.verify(v)
            assert res.ok, res.problems
            checks += 1
        assert sum(pending.get()) == 120
    assert audit.verify(v).ok


def _grant(args) -> str:
    vault_dir, ident_path, req = args
    identity.SCRYPT_WORK_FACTOR = 10
    actor = Vault.open(Path(vault_dir)).act_as(identity.load_identity(Path(ident_path), PASSPHRASE))
    try:
        return access.grant(actor, req, hours=2)
    except Exception as e:  # noqa: BLE001 - the parent counts which kinds came back
        return type(e).__name__


def test_parallel_grants_of_one_approval_issue_one_grant(office):
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff")["number"]
    office.run("request", "approve", req, who="head")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_grant, [(str(office.vault_dir), str(office.ident("bob")), req)] * 4)
    granted = [r for r in results if r.startswith("G-")]
    assert len(granted) == 1 and sorted(set(results) - set(granted)) == ["ConflictError"], results
    assert len(access.list_grants(Vault.open(office.vault_dir))) == 1


def test_many_rounds_of_parallel_grants_issue_one_grant_each_and_no_error(office):
    """Grants race on one approval round after round, each in a process of its own: in every round
    exactly one is granted and the others are refused as conflicts — never an error of the store
    (a writer's exclusive lock once swept away the temporary of a checkpoint another process was
    writing under the audit trail's lock)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(5) as pool:
        for _ in range(6):
            req = office.json("request", "access", office.number, "--purpose", "p", who="staff")["number"]
            office.run("request", "approve", req, who="head")
            results = pool.map(_grant, [(str(office.vault_dir), str(office.ident("bob")), req)] * 5)
            granted = [r for r in results if r.startswith("G-")]
            assert len(granted) == 1 and set(results) - set(granted) == {"ConflictError"}, results
    assert vault_cmd(office, "check", who=None).exit_code == 0


def test_the_exclusive_lock_leaves_the_audit_trails_temporaries_to_their_writer(office):
    """A reader appends to the history under the audit trail's lock alone and rewrites the checkpoint
    through a temporary beside it; a writer taking the vault's exclusive lock meanwhile must not
    delete that temporary (the reader's rename then failed). The next appender, holding the audit
    lock, removes one its writer left behind."""
    v = Vault.open(office.vault_dir)
    tmp = office.vault_dir / "audit" / ".tmp-checkpoint.toml.0badc0de"
    with audit.lock(v, exclusive=True):
        tmp.write_bytes(b"half a checkpoint")
        with v.lock(exclusive=True):
            pass
        assert tmp.exists()
    actor = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    actor.audit("vault.open")
    assert not tmp.exists()


def _update_docs(args) -> int:
    vault_dir, ident_path, number, n = args
    identity.SCRYPT_WORK_FACTOR = 10
    from vault.office import documents

    actor = Vault.open(Path(vault_dir)).act_as(identity.load_identity(Path(ident_path), PASSPHRASE))
    src = Path(vault_dir).parent / f"w{os.getpid()}.txt"
    src.write_text("again\n")
    for _ in range(n):
        documents.add(actor, number, [src], category="other", source="s", date="2026-01-01", original=True)
    return n


def _read_manifest(args) -> list[str]:
    vault_dir, dossier_id, seconds = args
    import time

    errors: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = Vault.open(Path(vault_dir))  # a fresh client state each time: a replay that can lag the files
        for _ in range(20):
            try:
                committed.load(v, f"dossiers/{dossier_id}/manifest.toml")
            except Exception as e:  # noqa: BLE001 - the parent reports any
                errors.append(f"{type(e).__name__}: {e}")
    return errors


def test_a_record_read_beside_its_commits_is_the_old_or_the_new_never_an_error(office):
    """A reader without the lock reads a record while writers commit new versions of it (stage as
    ``.pending``, append the entry, rename): it gets the bytes of the entry it replayed to, or of a
    newer one — never a false "does not match" or a missing file."""
    v = Vault.open(office.vault_dir)
    dossier_id = authority.state(v)["numbers"][office.number]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        writers = pool.map_async(_update_docs, [(str(office.vault_dir), str(office.ident("bob")), office.number, 12)] * 2)
        readers = pool.map_async(_read_manifest, [(str(office.vault_dir), dossier_id, 6.0)] * 2)
        assert sum(writers.get()) == 24
        errors = [e for r in readers.get() for e in r]
    assert not errors, errors[:5]


def _create_and_add(args) -> int:
    vault_dir, ident_path, n = args
    identity.SCRYPT_WORK_FACTOR = 10
    from vault.office import documents, dossier

    actor = Vault.open(Path(vault_dir)).act_as(identity.load_identity(Path(ident_path), PASSPHRASE))
    src = Path(vault_dir).parent / f"c{os.getpid()}.txt"
    src.write_text("content\n")
    for i in range(n):
        number = dossier.create(actor, customer_type="enterprise", business="network-services", dept="sales",
                                profile={"name": f"Parallel {os.getpid()} {i}"})
        documents.add(actor, number, [src], category="other", source="s", date="2026-01-01", original=True)
    return n


def test_check_and_audit_verify_raise_no_false_alarm_beside_committing_writers(office):
    """``check`` (shared vault lock) and ``audit verify`` (the audit lock alone) run again and again
    while writers create dossiers and add documents — commits with staged records, renames and
    deletions, and reads that append: neither ever reports a problem [R-3.3.1]."""
    from vault.office import check

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        pending = pool.map_async(_create_and_add, [(str(office.vault_dir), str(office.ident("bob")), 4)] * 3)
        runs = 0
        while not pending.ready() or runs < 4:
            v = Vault.open(office.vault_dir)  # a client that never saw the vault: the whole replay each time
            res = audit.verify(v)
            assert res.ok, res.problems
            rep = check.check(Vault.open(office.vault_dir))
            assert rep.ok, rep.problems
            runs += 1
        assert sum(pending.get()) == 12
    assert check.check(Vault.open(office.vault_dir)).ok


# -- a FIFO or a symbolic link where a vault file should be: someone who can write the vault
# directory plants one. A FIFO's open waits for a writer that never comes, a link names what is
# not the vault's: neither is ever opened through, each is named as tampering, and nothing waits.

def _vault_file(office, which: str) -> Path:
    from backup_helpers import dossier_id

    d = office.vault_dir / "dossiers" / dossier_id(office, office.number)
    return {"document": lambda: next((d / "documents").iterdir()), "manifest": lambda: d / "manifest.toml",
            "key table": lambda: office.vault_dir / "keys" / f"{d.name}.age",
            "ring": lambda: office.vault_dir / "rings" / "archive.toml",
            "audit log": lambda: office.vault_dir / "audit" / "log.jsonl"}[which]()


def _plant(path: Path, kind: str, outside: Path) -> None:
    """Replace ``path`` by a FIFO, or by a symbolic link to a copy of its own bytes outside the vault
    (followed, it would pass for the file)."""
    copy = outside / path.name
    copy.write_bytes(path.read_bytes())
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":  # (bound from its directory: a socket's path is short)
        import socket

        here = os.getcwd()
        os.chdir(path.parent)
        try:
            socket.socket(socket.AF_UNIX).bind(path.name)
        finally:
            os.chdir(here)
    else:
        path.symlink_to(copy)


@pytest.mark.parametrize("kind", ["fifo", "link", "socket"])
@pytest.mark.parametrize("which", ["document", "manifest", "key table", "ring", "audit log"])
def test_check_names_a_fifo_or_link_in_place_of_a_vault_file_and_never_waits(office, tmp_path, which, kind):
    path = _vault_file(office, which)
    rel = path.relative_to(office.vault_dir).as_posix()
    _plant(path, kind, tmp_path)
    res = vault_cmd(office, "check", who=None)  # (a FIFO opened for reading would wait here for good)
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert res.output.count(f"problem: {rel}") == 1, res.output  # (by its reader; the walk's finding adds none)
    assert "not a regular file" in res.output or "is a symbolic link" in res.output, res.output


def _problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("problem: ")]


@pytest.mark.parametrize("which", ["dossier", "documents", "records"])
def test_check_names_a_vault_directory_replaced_by_a_link(office, tmp_path, which):
    """A vault directory replaced by a link to a faithful copy outside: every file still reads as
    the history says, through the link, but what it names is not the vault's — the next write to it
    would leave the vault. ``check`` names the link (a warm check too: it walks every directory)."""
    assert vault_cmd(office, "check", who=None).exit_code == 0  # (this client's cache is warm)
    d = _vault_file(office, "manifest").parent
    path = {"dossier": d, "documents": d / "documents", "records": office.vault_dir / "rings"}[which]
    rel = path.relative_to(office.vault_dir).as_posix()
    shutil.copytree(path, tmp_path / "copy", symlinks=True)
    shutil.rmtree(path)
    path.symlink_to(tmp_path / "copy")
    res = vault_cmd(office, "check", who=None)
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert _problems(res.output) == [f"problem: {rel}: not a regular file (a symbolic link, FIFO or device: "
                                     "tampered with)"], res.output


def test_check_names_what_is_no_file_where_nothing_reads(office, tmp_path):
    """A FIFO, a socket or a link where no part of the vault is read — beside a dossier's manifest,
    among its documents under a name no manifest knows, at the top, in the work directory — is named
    once each, as ``vault backup run`` names it (its problem line says to run ``vault check``)."""
    d = _vault_file(office, "manifest").parent.relative_to(office.vault_dir).as_posix()
    planted = [f"{d}/fifo", f"{d}/documents/zz.age", "link", ".tmp-writes/journal"]
    (office.vault_dir / ".tmp-writes").mkdir(exist_ok=True)
    for i, rel in enumerate(planted):
        p = office.vault_dir / rel
        p.unlink(missing_ok=True)
        os.mkfifo(p) if i % 2 == 0 else p.symlink_to(tmp_path)
    res = vault_cmd(office, "check", who=None)
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert _problems(res.output) == sorted(f"problem: {rel}: not a regular file (a symbolic link, FIFO or device: "
                                           "tampered with)" for rel in planted), res.output


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_doc_view_names_a_document_that_is_no_file_by_its_vault_path(office, tmp_path, kind):
    path = _vault_file(office, "document")
    rel = path.relative_to(office.vault_dir).as_posix()
    _plant(path, kind, tmp_path)
    res = vault_cmd(office, "doc", "view", office.doc, "--output", str(tmp_path / "out.txt"))
    assert_refused_cleanly(res, "doc view")
    assert res.stderr.startswith(f"vault: error: {rel} ({office.doc}): not a regular file"), res.stderr
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("part", ["age", "toml"])
def test_check_and_accept_name_a_fifo_in_place_of_a_pending_submission(office, tmp_path, part):
    """A submission's file or record replaced by a FIFO: ``check`` names it, ``intake accept``
    refuses it in one line; neither waits."""
    f = tmp_path / "note.txt"
    f.write_text("a customer's note\n")
    sid = office.json("intake", "submit", str(f), "--for", office.number, "--category", "feedback", "--source",
                      "desk", "--date", "2026-01-01")["ids"][0]
    path = office.vault_dir / "intake" / f"{sid}.{part}"
    _plant(path, "fifo", tmp_path)
    res = vault_cmd(office, "check", who=None)
    assert res.exit_code == 1 and f"problem: intake/{sid}.{part}: not a regular file" in res.output, res.output
    res = vault_cmd(office, "intake", "accept", sid, who="bob")
    assert_refused_cleanly(res, "accept")
    assert f"vault: error: intake/{sid}.{part}: not a regular file" in res.stderr, res.stderr
    # It holds up no other submission: accepting another re-wraps what is pending, and passes it by.
    other = office.json("intake", "submit", str(f), "--for", office.number, "--category", "feedback", "--source",
                        "desk", "--date", "2026-01-01")["ids"][0]
    assert vault_cmd(office, "intake", "accept", other, who="bob").exit_code == 0


def test_a_journal_that_is_no_file_stops_no_writer_and_is_never_written_through(office, tmp_path):
    """The work directory's journal replaced by a FIFO, or by a link to a file outside: a write
    command neither waits nor truncates what the link names."""
    journal = office.vault_dir / ".tmp-writes" / "journal"
    journal.parent.mkdir(exist_ok=True)
    victim = tmp_path / "victim"
    for kind in ("fifo", "link"):
        victim.write_bytes(b"not the vault's\n")
        journal.unlink(missing_ok=True)
        os.mkfifo(journal) if kind == "fifo" else journal.symlink_to(victim)
        res = vault_cmd(office, "dossier", "create", "--type", "enterprise", "--business", "network-services",
                        "--dept", "sales", "--name", f"Journal {kind}", who="bob")
        assert res.exit_code == 0, res.output
        assert victim.read_bytes() == b"not the vault's\n"
    assert vault_cmd(office, "check", who=None).exit_code == 0


def test_a_backup_follows_no_link_and_waits_on_no_fifo(office, tmp_path):
    """A link planted in the vault would carry what it names (a file only the backup job may read)
    off-site in the clear; a FIFO would stop the nightly run. Neither is followed nor read: the run
    names them and exits 3 with its snapshot saved, which restores the vault without them."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"MARKER-" + os.urandom(8).hex().encode())
    d = _vault_file(office, "manifest").parent
    planted = {"keys/zz.age": "link", f"dossiers/{d.name}/documents/zz.age": "link", f"dossiers/{d.name}/fifo": "fifo",
               f"dossiers/{d.name}/linked": "directory link"}
    for rel, kind in planted.items():
        p = office.vault_dir / rel
        os.mkfifo(p) if kind == "fifo" else p.symlink_to(secret.parent if kind == "directory link" else secret)
    url = f"file://{tmp_path / 'target'}"
    res = vault_cmd(office, "backup", "run", url, who=None)
    assert res.exit_code == 3 and "Traceback" not in res.output, res.output
    assert all(f"problem: {rel} is not a regular file" in res.stdout for rel in planted), res.stdout
    marker = secret.read_bytes()
    assert not [p for p in (tmp_path / "target").rglob("*") if p.is_file() and marker in p.read_bytes()]
    assert vault_cmd(office, "backup", "verify", url, "--read-data", who=None).exit_code == 0
    res = vault_cmd(office, "check", who=None)  # (what the run's problem lines say to run)
    assert res.exit_code == 1 and all(f"problem: {rel}: " in res.output for rel in planted), res.output
    for rel in planted:
        (office.vault_dir / rel).unlink()
    dest = tmp_path / "restored"
    res = vault_cmd(office, "backup", "restore", url, "latest", str(dest))
    assert res.exit_code == 0, res.output
    assert tree_digest(dest) == tree_digest(office.vault_dir)
