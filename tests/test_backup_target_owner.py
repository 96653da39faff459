"""The owner of a ``file://`` backup target writes what they like into it — links, FIFOs, forged
objects named by their own hash. Nothing they write takes a command out of the target, makes it
wait, or ends it in a traceback: each is refused or reported in one line naming the object."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backup_helpers import actor, add_docs, office_with_dossiers
from vault.errors import IntegrityError
from vault_plugins.targets import FileTarget

PY = sys.executable


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def backed_up(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=1)
    add_docs(o, numbers[0], 2, 5000, tmp_path / "src", act=actor(o))
    t = tmp_path / "target"
    o.run("backup", "run", f"file://{t}")
    return o, t


def rewrite(t: Path, prefix: str, edit) -> str:
    """Replace the one object under ``prefix/`` by an edited copy named by its new hash, as the
    target's owner can; the new name."""
    (old,) = (t / prefix).iterdir()
    obj = json.loads(old.read_bytes())
    edit(obj)
    old.unlink()
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    (t / prefix / sha(data)).write_bytes(data)
    return f"{prefix}/{sha(data)}"


def cli(o, *args: str) -> subprocess.CompletedProcess:
    """``vault ARGS`` in a process of its own (the timeout only keeps a hang from stopping the suite)."""
    env = {**os.environ, "VAULT_DIR": str(o.vault_dir), "VAULT_PASSPHRASE_FILE": str(o.root / "pass"),
           "VAULT_IDENTITY": str(o.ident("bob")), "VAULT_AGENT_SOCK": str(o.root / "none.sock")}

    try:
        return subprocess.run([PY, "-m", "vault", *args], env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"vault {' '.join(args)} still waits after 120 s")


def one_error(r: subprocess.CompletedProcess, *names: str) -> str:
    """The one ``vault: error:`` line of a refused command, which names each of ``names``."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("vault: error:")]
    for name in names:
        assert name in line, (name, line)
    assert "vault: hint: run 'vault backup verify'" in r.stderr, r.stderr
    return line


# -- symbolic links below the target's root -------------------------------------------------------


def test_prune_deletes_nothing_through_a_linked_directory(backed_up, tmp_path):
    """Attack: ``data/ab`` made a link to a directory outside, and an index forged (named by its own
    hash) to list a pack there that no snapshot needs — prune would delete the file it names."""
    o, t = backed_up
    victim = tmp_path / "precious" / ("ab" + "c" * 62)
    victim.parent.mkdir()
    victim.write_text("not the target's")
    os.symlink(victim.parent, t / "data" / "ab")
    rewrite(t, "index", lambda ix: ix["packs"].__setitem__(victim.name, {"size": 1, "blobs": [["0" * 64, 0, 1]]}))
    r = cli(o, "backup", "prune", f"file://{t}", "--keep-daily", "1")
    one_error(r, f"data/ab/{victim.name}", "data/ab,", str(t))
    assert victim.read_text() == "not the target's"


@pytest.mark.parametrize("linked", ["trees", "data"])
def test_a_run_writes_nothing_through_a_linked_directory(backed_up, tmp_path, linked):
    """Attack: the target's ``trees/`` or ``data/`` moved out and replaced by a link to it — a run
    would put its new tree or packs wherever the link points."""
    o, t = backed_up
    out = tmp_path / "elsewhere"
    out.mkdir()
    (t / linked).rename(out / linked)
    os.symlink(out / linked, t / linked)
    before = sorted(p for p in (out / linked).rglob("*"))
    o.add_text(o.create(name="X", contact="x@example.org"), "new text")
    r = cli(o, "backup", "run", f"file://{t}")
    one_error(r, f"{linked},", str(t))
    assert sorted(p for p in (out / linked).rglob("*")) == before


def test_the_file_target_goes_through_no_link_below_its_root(tmp_path):
    """Every operation on a name under a linked directory, or under a file where a directory
    belongs, is refused naming the object; the root itself may be a link."""
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "obj").write_bytes(b"outside")
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "root-link")
    t = FileTarget(f"file://{tmp_path / 'root-link'}")
    os.symlink(outside / "x", real / "x")
    (real / "plain").write_bytes(b"a file")
    for name in ("x/obj", "x/new", "plain/obj"):
        part = name.split("/")[0]
        calls = [(t.get, name), (t.exists, name), (t.delete, name), (t.put, name, io.BytesIO(b"new")),
                 (t.put_many, [(name, b"new")])]
        for call, *args in calls:
            with pytest.raises(IntegrityError) as e:
                call(*args)  # type: ignore[operator]
            assert f"object {name} is reached through {part}," in str(e.value), call
        with pytest.raises(IntegrityError, match=f"is reached through {part},"):
            t.list(f"{part}/")
    assert sorted(os.listdir(outside / "x")) == ["obj"] and (outside / "x" / "obj").read_bytes() == b"outside"
    assert list(t.list()) == ["plain"]  # the linked directory's names are no objects
    t.put("y/obj", io.BytesIO(b"here"))  # through the root's own link: fine
    assert (real / "y" / "obj").read_bytes() == b"here" and t.get("y/obj").read() == b"here"

