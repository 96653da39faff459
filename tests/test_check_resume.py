"""``vault check`` keeps a checkpoint of its replay of the history (``replaypoint``) and replays only
newer entries next time: whoever writes the vault directory still cannot get a changed entry past it."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from vault.archive import authority, checkcache, replaypoint, witness
from vault.archive.vault import Vault
from vault.cli import cli
from vault.office import check as checker


def _check(o):
    return checker.check(Vault.open(o.vault_dir))


def _cache(o) -> dict:
    v = Vault.open(o.vault_dir)
    return json.loads((witness.state_dir(v) / checkcache.NAME).read_bytes())


@pytest.fixture
def office(office, tmp_path):
    """Three dossiers with a document each: a history of several entries."""
    for i in range(3):
        f = tmp_path / f"d{i}.txt"
        f.write_text(f"document {i}")
        office.add_doc(office.create(name=f"Resumed Customer {i}"), f)
    return office


@pytest.fixture
def replayed(monkeypatch):
    """How many entries each replay checks (a warm check: only those after its checkpoint)."""
    counts: list[int] = []
    real = authority.Replay.apply

    def apply(self, lines):
        if self.lines is not None:  # a check's replay (a command's own replays keep no lines)
            counts.append(len(lines))
        return real(self, lines)

    monkeypatch.setattr(authority.Replay, "apply", apply)
    return counts


def _warm(o, replayed) -> int:
    """Two checks: the first replays from genesis and keeps a checkpoint, the second resumes from it."""
    assert _check(o).ok
    n = len(o.vault_dir.joinpath("audit", "log.jsonl").read_bytes().splitlines())
    assert replayed[0] == n > 1  # (later calls: the command's own reads of the state, advancing it)
    assert _cache(o)["history"]["state"]["count"] == n
    replayed.clear()
    assert _check(o).ok
    assert sum(replayed) == 0, replayed  # nothing after the checkpoint: no entry replayed again
    return n


def test_a_warm_check_replays_only_newer_entries(office, replayed, tmp_path):
    n = _warm(office, replayed)
    f = tmp_path / "later.txt"
    f.write_text("a later document")
    office.add_doc(office.create(name="Later Customer"), f)
    replayed.clear()
    rep = _check(office)
    assert rep.ok, rep.problems
    grown = len(office.vault_dir.joinpath("audit", "log.jsonl").read_bytes().splitlines())
    assert replayed[0] == grown - n > 0 and sum(replayed) == grown - n


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_changed_entry_before_the_checkpoint_is_named(office, replayed, where):
    """The attacker changes one byte of an entry the checkpoint covers (its signature): the log's
    bytes no longer hash to the checkpoint's, the check replays from genesis and names the line."""
    n = _warm(office, replayed)
    log = office.vault_dir / "audit" / "log.jsonl"
    lines = log.read_bytes().split(b"\n")
    i = {"first": 0, "middle": n // 2, "last": n - 1}[where]
    entry = json.loads(lines[i])
    entry["sig"] = ("B" if entry["sig"][0] != "B" else "C") + entry["sig"][1:]
    lines[i] = json.dumps(entry, separators=(",", ":")).encode()
    before = os.stat(log)
    log.write_bytes(b"\n".join(lines))
    os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))
    rep = _check(office)
    assert any(f"audit/log.jsonl line {i + 1}: bad signature" in str(p) for p in rep.problems), rep.problems


def test_an_entry_removed_before_the_checkpoint_is_named(office, replayed):
    n = _warm(office, replayed)
    log = office.vault_dir / "audit" / "log.jsonl"
    lines = log.read_bytes().split(b"\n")
    del lines[n // 2]
    log.write_bytes(b"\n".join(lines))
    rep = _check(office)
    assert any(f"audit/log.jsonl line {n // 2 + 1}: sequence" in str(p) for p in rep.problems), rep.problems


def test_a_forged_entry_after_the_checkpoint_is_named(office, replayed):
    """An entry appended after the checkpoint is checked as a replay from genesis checks it."""
    n = _warm(office, replayed)
    log = office.vault_dir / "audit" / "log.jsonl"
    last = json.loads(log.read_bytes().split(b"\n")[n - 1])
    forged = dict(last, seq=n + 1, prev=authority.sha256(log.read_bytes().split(b"\n")[n - 1]))
    with open(log, "ab") as f:
        f.write(json.dumps(forged, separators=(",", ":")).encode() + b"\n")
    rep = _check(office)
    assert any(f"audit/log.jsonl line {n + 1}: bad signature" in str(p) for p in rep.problems), rep.problems
    # ... and a partial line with no newline after the checkpoint, too (a replay from genesis reads it)
    log.write_bytes(b"\n".join(log.read_bytes().split(b"\n")[:n]) + b"\n{\"seq\":")
    rep = _check(office)
    assert any(f"audit/log.jsonl line {n + 1}: not a valid entry" in str(p) for p in rep.problems), rep.problems


@pytest.mark.parametrize("damage", ["garbage", "prefix", "offset", "short lines", "state of another shape"])
def test_a_damaged_checkpoint_is_replayed_past(office, replayed, damage):
    """A checkpoint that does not fit the log, or is not of the shape a check writes, is never
    believed and never an error: the history is replayed from genesis."""
    n = _warm(office, replayed)
    v = Vault.open(office.vault_dir)
    p = witness.state_dir(v) / checkcache.NAME
    cache = json.loads(p.read_bytes())
    cp = cache["history"]
    if damage == "garbage":
        cache["history"] = [1, 2, 3]
    elif damage == "prefix":
        cp["prefix"] = "0" * 64
    elif damage == "offset":
        cp["offset"] = cp["offset"] + 5
    elif damage == "short lines":
        cp["lines"] = cp["lines"][:-1]
    else:
        cp["state"]["files"] = []
    p.write_text(json.dumps(cache))
    replayed.clear()
    rep = _check(office)
    assert rep.ok, rep.problems
    assert replayed[0] == n  # from genesis
    assert _cache(office)["history"]["prefix"] != "0" * 64  # ... and a checkpoint of that replay kept
    replayed.clear()
    assert _check(office).ok and sum(replayed) == 0


def test_the_resumed_state_is_the_state_replayed_from_genesis(tmp_path):
    """On the demo office (grants, holds, a destruction, intake, a backup): a checkpoint taken part
    way, kept as JSON and resumed, gives exactly the state, hashes and lines of a replay from genesis."""
    res = CliRunner().invoke(cli, ["demo", str(tmp_path / "office")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    v = Vault.open(tmp_path / "office" / "vault")
    lines = (v.root / "audit" / "log.jsonl").read_bytes().split(b"\n")[:-1]
    assert len(lines) > 20
    full = authority.full_replay(v)
    for k in (1, len(lines) // 3, len(lines) - 1, len(lines)):
        part = tmp_path / f"part{k}"
        shutil.copytree(v.root, part, symlinks=True)
        (part / "audit" / "log.jsonl").write_bytes(b"\n".join(lines[:k]) + b"\n")
        cp = replaypoint.take(v, authority.full_replay(Vault.open(part)))
        assert cp is not None and cp["state"]["count"] == k
        resumed = replaypoint.resume(v, json.loads(json.dumps(cp)))
        assert resumed is not None
        assert resumed.state == full.state
        assert resumed.seen == full.seen and resumed.lines == full.lines
        assert resumed.digest.hexdigest() == full.digest.hexdigest()
