"""JSON (and TOML) nested deeper than the parser goes, written by whoever can write the vault directory
or the backup target: damage named in one line, never a traceback."""

from __future__ import annotations

import hashlib
import struct

import pytest

from vault.backup.repo import DATA, Repo

DEEP = b"[" * 100_000 + b"]" * 100_000  # past the parser's recursion limit


def test_a_deep_line_appended_to_the_history_is_named_by_check(office):
    log = office.vault_dir / "audit" / "log.jsonl"
    count = len(log.read_bytes().splitlines())
    with open(log, "ab") as f:
        f.write(DEEP + b"\n")
    res = office.run("check", ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output and "RecursionError" not in res.output
    assert f"audit/log.jsonl line {count + 1}: not a valid entry (damaged)" in res.output


@pytest.fixture
def target(office, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    url = f"file://{tmp_path / 'target'}"
    office.run("backup", "run", url)
    return url


def _put(tmp_path, name: str, data: bytes) -> None:
    path = tmp_path / "target" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.mark.parametrize("where", ["snapshot", "index", "pack", "history", "config"])
def test_a_deep_object_on_the_target_is_named_by_verify(office, tmp_path, target, where):
    """Each object the target owner can write, named by its hash where the format names it so."""
    sha = hashlib.sha256(DEEP).hexdigest()
    if where == "snapshot":
        _put(tmp_path, f"snapshots/{sha}", DEEP)
    elif where == "index":
        _put(tmp_path, f"index/{sha}", DEEP)
    elif where == "pack":  # an indexed pack whose header is now the deep JSON
        _put(tmp_path, Repo(target).list(DATA)[0], b"x" + DEEP + struct.pack("<I", len(DEEP)))
    else:
        _put(tmp_path, where, DEEP)
    res = office.run("backup", "verify", target, "--read-data", who="bob", ok=False)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and "RecursionError" not in res.output
    assert "parse" in res.output or "damaged" in res.output, res.output


def test_a_genesis_record_nested_too_deeply_is_named(office):
    """TOML too: a ``vault.toml`` whose arrays nest past the parser's limit is named, not a traceback."""
    (office.vault_dir / "vault.toml").write_bytes(b"a = " + b"[" * 5_000 + b"]" * 5_000 + b"\n")
    res = office.run("check", ok=False)
    assert res.exit_code != 0 and "Traceback" not in res.output and "RecursionError" not in res.output
    assert "vault.toml: not valid TOML (arrays or tables nested too deeply" in res.output, res.output
