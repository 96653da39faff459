"""Every command on a read-only vault and on a full disk: it works, or refuses in one line; the vault
is unchanged either way. The commands run in one process of their own, whose conditions (a read-only
bind mount, ``RLIMIT_FSIZE`` = 0) hold for all of them."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from test_hostile_cli import LONG_RUNNING, WHO, World, _argv, _commands, digest
from vault.cli import cli

HERE = Path(__file__).parent
_RO_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    w = World(tmp_path_factory.mktemp("conditions"), mp)
    yield w
    mp.undo()


def _cases(w: World) -> list[dict]:
    cases = []
    for path, cmd in _commands(cli):
        if path in (("demo",), ("keygen",)) or path in LONG_RUNNING:
            continue  # a sample office or an identity elsewhere, or a server: nothing of the vault's
        env = {"VAULT_DIR": str(w.office.vault_dir), "VAULT_PASSPHRASE_FILE": str(w.office.root / "pass"),
               "VAULT_IDENTITY": str(w.office.ident(WHO.get(path, "alice"))), "XDG_CACHE_HOME": str(w.dir / "cache")}
        cases.append({"argv": _argv(path, cmd, w.base(path)), "env": env})
    return cases


def _run(w: World, tmp_path: Path, *, wrap=(), preexec=None) -> list[tuple[list[str], dict]]:
    cases = _cases(w)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    p = subprocess.run([*wrap, sys.executable, str(HERE / "hostile_driver.py")], input=json.dumps(cases).encode(),
                       capture_output=True, cwd=cwd, env=env, preexec_fn=preexec, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return list(zip([c["argv"] for c in cases], json.loads(p.stdout)))


def _assert_clean(results) -> int:
    refused = 0
    for argv, r in results:
        label = "vault " + " ".join(argv)[:120]
        assert r["crash"] is None, f"{label}: {r['crash']}"
        if r["exit"] not in (0, 1, 2):
            raise AssertionError(f"{label}: exit {r['exit']}")
        if r["exit"] != 0 and r["stderr"]:
            lines = r["stderr"].splitlines()
            assert len(lines) <= 2 and lines[0].startswith("vault: error: "), f"{label}: {r['stderr'][:400]!r}"
            assert len(lines) == 1 or lines[1].startswith("vault: hint: "), label
            refused += 1
    return refused


def test_every_command_on_a_read_only_vault(world, tmp_path):
    w = world
    before = digest(w.office.vault_dir)
    if os.geteuid() == 0:
        wrap = ["unshare", "-m", "sh", "-c", _RO_MOUNT, str(w.office.vault_dir)]
        results = _run(w, tmp_path, wrap=wrap)
    else:
        for p in [w.office.vault_dir, *w.office.vault_dir.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        try:
            results = _run(w, tmp_path)
        finally:
            for p in [w.office.vault_dir, *w.office.vault_dir.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)
    assert _assert_clean(results) > 10  # the writers were refused ...
    ok = {" ".join(a[:2]) for a, r in results if r["exit"] == 0}
    assert {"check", "audit verify", "dossier list", "member list", "request list"} <= ok  # ... the readers work
    assert digest(w.office.vault_dir) == before


def test_every_command_on_a_full_disk(world, tmp_path):
    w = world
    before = digest(w.office.vault_dir)

    def full() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    results = _run(w, tmp_path, preexec=full)
    assert _assert_clean(results) > 10
    after = digest(w.office.vault_dir)
    # One change is allowed, by design: revoking deletes the key release before it writes the closing
    # record (so that no interruption leaves the grantee a key), and a deletion needs no space. The
    # grant still reads as active, and the next revoke finishes the job.
    gone = set(before) - set(after)
    assert {k: v for k, v in after.items()} == {k: v for k, v in before.items() if k not in gone}
    assert gone <= {f"keys/grants/{p.name}" for p in (w.pristine / "keys" / "grants").iterdir()}
    if gone:
        w.office.run("grant", "revoke", w.grant, who="alice")
        assert w.office.json("check")["ok"]
