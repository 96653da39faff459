"""Bad input, damage, interruption and concurrency: the vault loses nothing and names what is wrong."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from office import PASSPHRASE, make_office, on_a_terminal
from vault.office import dossier as dossier_mod
from vault.archive import manifests
from vault.store import WORK_DIR, identity
from vault.archive.vault import Vault


pytestmark = pytest.mark.office(dossier={"name": "Acme", "contact": "acme@example.org"}, doc="first document\n")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".lock"}


def _one_line_error(res, *fragments: str) -> None:
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln]
    assert lines and lines[0].startswith("vault: error: ") and len(lines) <= 2, res.stderr
    for frag in fragments:
        assert frag in res.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--category", "memo", "--date", "2026-01-01", "--original"], "unknown category"),
    (["--category", "contract", "--date", "2026-02-30", "--original"], "bad date"),
    (["--category", "contract", "--date", "01/02/2026", "--original"], "bad date"),
    (["--category", "contract", "--date", "2026-01-01", "--copy"], "copy needs a note"),
])
def test_bad_document_input_is_one_line_and_changes_nothing(office, tmp_path, args, fragment):
    before = _snapshot(office.vault_dir)
    f = tmp_path / "b.txt"
    f.write_text("x")
    res = office.run("doc", "add", office.number, str(f), "--source", "desk", *args, who="bob", ok=False)
    _one_line_error(res, fragment)
    assert _snapshot(office.vault_dir) == before


def test_missing_file_wrong_passphrase_wrong_vault(office, tmp_path):
    res = office.run("doc", "add", office.number, str(tmp_path / "nope.pdf"), "--category", "contract",
                     "--source", "s", "--date", "2026-01-01", "--original", who="bob", ok=False)
    _one_line_error(res, "no such file")
    (tmp_path / "wrong").write_text("not it\n")
    res = office.run("dossier", "show", office.number, who="bob", ok=False,
                     env={"VAULT_PASSPHRASE_FILE": str(tmp_path / "wrong")})
    _one_line_error(res, "wrong passphrase")
    res = office.run("dossier", "list", ok=False, env={"VAULT_DIR": str(tmp_path / "elsewhere")})
    _one_line_error(res, "no vault at")
    res = office.run("doc", "view", f"{office.number}/0099", who="bob", ok=False)
    _one_line_error(res, "no document")
    res = office.run("doc", "view", "X-0000-000000/0001", who="bob", ok=False)
    _one_line_error(res, "no dossier numbered")


def test_an_identity_of_another_vault_is_refused(office, tmp_path, monkeypatch):
    other = make_office(tmp_path / "other", monkeypatch)
    res = office.run("dossier", "show", office.number, ok=False,
                     env={"VAULT_IDENTITY": str(other.ident("alice"))})
    _one_line_error(res, "not a member of this vault")


def test_damaged_manifest_is_named(office):
    v = Vault.open(office.vault_dir)
    mpath = v.layout.manifest(manifests.resolve(v, office.number))
    mpath.write_text(mpath.read_text().replace('dept = "sales"', 'dept = "legal"'))
    res = office.run("dossier", "show", office.number, who="bob", ok=False)
    _one_line_error(res, "manifest.toml", "does not match history")
    rep = office.run("check", "--json", ok=False)
    assert rep.exit_code == 1 and "manifest.toml: changed" in rep.stdout
    mpath.write_text("this is [not toml")
    _one_line_error(office.run("dossier", "show", office.number, who="bob", ok=False), "does not match history")


def test_check_names_every_damaged_file(office, tmp_path):
    v = Vault.open(office.vault_dir)
    did = manifests.resolve(v, office.number)
    f = tmp_path / "c.txt"
    f.write_bytes(os.urandom(200_000))
    second = office.add_doc(office.number, f)
    docs = sorted((v.layout.dossier_dir(did) / "documents").glob("*.age"))
    assert len(docs) == 2
    raw = bytearray(docs[0].read_bytes())
    raw[-5] ^= 1  # flip one payload bit
    docs[0].write_bytes(bytes(raw))
    docs[1].unlink()
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1
    assert f"{docs[0].name}" in res.stdout and "hash does not match" in res.stdout
    assert f"{docs[1].name}" in res.stdout and "missing" in res.stdout
    for docno in (office.doc, second):  # one is tampered, the other missing: both refused cleanly
        bad = office.run("doc", "view", docno, who="bob", ok=False)
        _one_line_error(bad, "documents/")


def test_damaged_key_table_is_named(office):
    v = Vault.open(office.vault_dir)
    did = manifests.resolve(v, office.number)
    kt = v.layout.key_table(did)
    kt.write_bytes(kt.read_bytes()[:-10])
    res = office.run("check", "--read-data", who="bob", ok=False)
    assert res.exit_code == 1 and f"keys/{did}.age" in res.stdout


def _kill_during_add(office, tmp_path, big: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VAULT_DIR=str(office.vault_dir), VAULT_IDENTITY=str(office.ident("bob")),
               VAULT_PASSPHRASE_FILE=str(office.root / "pass"))
    p = subprocess.Popen([sys.executable, "-m", "vault", "doc", "add", office.number, str(big), "--category",
                          "other", "--source", "s", "--date", "2026-01-01", "--original"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # A writer under the exclusive lock makes its temporaries in the vault's work directory.
    work = office.vault_dir / WORK_DIR
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (work.is_dir() and any(x.name.startswith(".tmp-") for x in work.iterdir())):
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return p


def test_interrupted_add_leaves_the_vault_as_it_was(office, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(256 << 20)  # sparse: cheap to make, long enough to interrupt
    before = {k: v for k, v in _snapshot(office.vault_dir).items() if ".tmp-" not in k}
    p = _kill_during_add(office, tmp_path, big)
    assert p.returncode == -signal.SIGKILL
    after = _snapshot(office.vault_dir)
    assert {k: v for k, v in after.items() if ".tmp-" not in k} == before
    rep = office.json("check", "--read-data", who="bob")
    assert rep["ok"] and rep["documents"] == 1
    # The next write sweeps the leftovers.
    f = tmp_path / "n.txt"
    f.write_text("next")
    office.add_doc(office.number, f)
    assert not [k for k in _snapshot(office.vault_dir) if Path(k).name.startswith(".tmp-")]


def _create_many(args) -> list[str]:
    vault_dir, ident_path, n = args
    identity.SCRYPT_WORK_FACTOR = 10
    ident = identity.load_identity(Path(ident_path), PASSPHRASE)
    actor = Vault.open(Path(vault_dir)).act_as(ident)
    return [dossier_mod.create(actor, customer_type="individual", business="network-services", dept="sales",
                               profile={"name": f"P{os.getpid()}-{i}"}) for i in range(n)]


def test_numbers_stay_unique_with_concurrent_writers(office):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_create_many, [(str(office.vault_dir), str(office.ident("bob")), 5)] * 4)
    numbers = [n for r in results for n in r] + [office.number]
    assert len(numbers) == len(set(numbers)) == 21
    seqs = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert seqs == list(range(1, 22))  # no gap, no reuse
    assert office.json("check", who="bob")["ok"]


def _small_files(tmp_path: Path, n: int) -> list[str]:
    files = []
    for i in range(n):
        f = tmp_path / f"small{i}.txt"
        f.write_text(str(i))
        files.append(str(f))
    return files


def test_progress_is_quiet_when_piped(office, tmp_path):
    files = _small_files(tmp_path, 3)
    res = office.run("doc", "add", office.number, *files, "--category", "other", "--source", "s",
                     "--date", "2026-01-01", "--original", who="bob")
    assert res.stderr == "" and len(res.stdout.split()) == 3


def test_identity_file_is_private_and_never_overwritten(office):
    p = office.ident("alice")
    assert p.stat().st_mode & 0o777 == 0o600
    assert b"AGE-SECRET-KEY" not in p.read_bytes() and b"VAULT-SIGN" not in p.read_bytes()
    res = office.run("keygen", "--out", str(p), ok=False)
    _one_line_error(res, "already exists")


def test_check_covers_procedure_records_and_the_audit_trail(office):
    office.add_member("staff", "staff", dept="sales")
    req = office.json("request", "access", office.number, "--purpose", "p", who="staff")["number"]
    assert office.json("check", who="bob")["ok"]
    rec = office.vault_dir / "requests" / f"{req}.toml"
    rec.write_text(rec.read_text().replace('kind = "access"', 'kind = "copy"'))
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and f"requests/{req}.toml: changed" in res.stdout
    rec.unlink()
    log = office.vault_dir / "audit" / "log.jsonl"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-1]))
    res = office.run("check", who="bob", ok=False)
    assert res.exit_code == 1 and "history cut or rolled back" in res.stdout


def test_progress_bar_shows_on_a_terminal(office, tmp_path):
    files = _small_files(tmp_path, 5)
    env = dict(os.environ, VAULT_DIR=str(office.vault_dir), VAULT_IDENTITY=str(office.ident("bob")),
               VAULT_PASSPHRASE_FILE=str(office.root / "pass"))
    p, shown = on_a_terminal(["doc", "add", office.number, *files, "--category", "other", "--source", "s",
                              "--date", "2026-01-01", "--original"], env, timeout=60)
    assert p.returncode == 0 and len(p.stdout.split()) == 5
    assert b"encrypting" in shown and b"100%" in shown


def test_a_raising_plugin_is_named_and_leaves_the_vault_as_it_was(office, monkeypatch):
    from vault import plugins
    from vault.hookspecs import hookimpl

    class Broken:
        @hookimpl
        def vault_register_numbering_schemes(self, register):
            class Scheme:
                def number(self, *, sequence, facts):
                    raise RuntimeError("counter service unreachable")

            register("standard", lambda options: Scheme())

    real = plugins.get_plugin_manager

    def broken_pm(**kw):
        pm = real(entry_points=False)
        # Registered as a built-in, so that it may take the short name the vault's config declares.
        plugins.register_plugin(pm, Broken(), name="example-broken", source=plugins.PluginSource(None, None, True))
        from vault_plugins import classification

        plugins.register_plugin(pm, classification, name="classification",
                                source=plugins.PluginSource(None, None, True))
        return pm

    before = _snapshot(office.vault_dir)
    monkeypatch.setattr(plugins, "get_plugin_manager", broken_pm)
    res = office.run("dossier", "create", "--type", "individual", "--business", "b", "--dept", "sales",
                     "--name", "Nobody", who="bob", ok=False)
    _one_line_error(res, "plugin example-broken failed: RuntimeError: counter service unreachable")
    after = _snapshot(office.vault_dir)
    assert {k: v for k, v in after.items() if not k.startswith("audit/")} == \
        {k: v for k, v in before.items() if not k.startswith("audit/")}
    monkeypatch.undo()
    assert office.create(name="Somebody").endswith("000002")  # the sequence was not consumed


def test_running_out_of_memory_is_one_line(office, monkeypatch):
    """What a file or a server sends may be larger than any bound a reader knows of: a command that
    runs out of memory says so in one line with a hint, and exits 1 — no traceback."""
    from vault.office import documents

    def exhausted(*a, **kw):
        raise MemoryError

    monkeypatch.setattr(documents, "view", exhausted)
    res = office.run("doc", "view", office.doc, who="bob", ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stderr.splitlines() == [
        "vault: error: out of memory",
        "vault: hint: free memory or raise this process's limit and run the command again; 'vault check' names "
        "anything it left half done"]
