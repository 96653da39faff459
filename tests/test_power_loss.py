"""A power cut at any moment of a write command: whatever it keeps, the history never names what it
lost, and nothing a command acknowledged is lost.

The crash sweep (``test_crash_points``) stops each command at each durable step, as ``kill -9``
does: every byte written so far is kept. A power cut keeps less — only what was made durable — and
in any order the disk chose. This test runs each write command once with the crash seam's trace and
follows, step by step, what is durable (``crash_harness.not_durable_at_commits``): before each
commit point (an entry appended to the history, its signed checkpoint renamed into place, a
snapshot put on a backup target) everything the command wrote before it must be durable, and when
the command ends, everything it wrote. Then whatever a power cut keeps is a state a stop also
leaves: a prefix of the steps made durable, which the crash sweep judged.

What a power cut may lose without harm is left out, each for its reason:
- temporaries (``.tmp-*``): every reader ignores them, every writer removes them;
- the journal's truncation at the end of a write: losing it leaves what a stop just before the
  truncation leaves (the journal names renames already made: the next run finds them done);
- a backup's staging directory (``.backup-staging-*``): links to the vault's own files for one run;
  no reader looks inside it, the next run removes it;
- the client's state outside the vault (its caches and its replay point are kept without fsync:
  rebuilt from the vault when lost).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from crash_harness import copy_tree, env_for, not_durable_at_commits, run_cli
from test_crash_points import T0, Cmd, _argv, base, commands  # noqa: F401  (``base``: the prepared trees, a fixture)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the commands run in forked children")


def _exempt(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith(".tmp-") or "/.backup-staging-" in path


def _commit(kind: str, path: str) -> bool:
    return (kind == "append" and path.endswith("/audit/log.jsonl")) \
        or (kind == "rename" and (path.endswith("/audit/checkpoint.toml") or "/snapshots/" in path))


def _appended(kind: str, path: str) -> bool:
    return kind == "append" and path.endswith("/audit/log.jsonl")


def _journal_truncation(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The steps without the journal's truncations (see the module's text)."""
    return [s for s in steps if not (s[0] == "truncate" and s[1].endswith("/.tmp-writes/journal"))]


def _trace(cmd, trees, scratch: Path) -> list[tuple[str, str]]:
    root = scratch / cmd.name
    copy_tree(trees.trees[cmd.base], root)
    res = run_cli(_argv(cmd, root, trees.refs), env_for(root, trees.ids, cmd.who), trace=True, at=cmd.at,
                  workdir=root)
    assert res.code == 0 and not res.traceback, f"{cmd.name}: {res.stderr}"
    return res.steps or []


def test_every_write_command_makes_all_it_wrote_durable_before_its_commit_point_and_its_end(base):  # noqa: F811
    scratch = Path(tempfile.mkdtemp(dir=base.scratch.parent))
    found: list[str] = []
    for cmd in commands(base.refs):
        steps = _journal_truncation(_trace(cmd, base, scratch))
        for top in ("vault", "target"):
            where = str(scratch / cmd.name / top)
            found += [f"{cmd.name}: {x.replace(where, top)}"
                      for x in not_durable_at_commits(steps, where, commit=_commit, exempt=_exempt)]
    assert not found, "\n".join(found)


def _more(r: dict[str, str]) -> list[Cmd]:
    """Write commands the crash sweep does not stop, each run once here: a batch of documents (made
    durable with one syncfs), an identity, the search index rebuilt, an invitation, a location and
    an inventory of paper originals, a member renamed, a dossier closed, a vault restored, a
    submission to the intake."""
    day = T0.date().isoformat()
    return [
        Cmd("doc-add-batch", ["doc", "add", r["A"], *[r["file"]] * 6, "--category", "contract", "--source", "desk",
                              "--date", day, "--copy", "--copy-note", "scan"], "bob"),
        Cmd("keygen", ["keygen", "--out", "{root}/new.key"], None),
        Cmd("index-rebuild", ["index", "rebuild"], "bob"),
        Cmd("intake-invite", ["intake", "invite", r["A"], "--base-url", "https://portal.example"], "bob"),
        # What a customer submits (the portal files an upload the same way): acknowledged only durable.
        Cmd("intake-submit", ["intake", "submit", r["file"], "--for", r["A"], "--category", "contract",
                              "--source", "mail", "--date", day], None),
        Cmd("paper-locate", ["paper", "locate", r["docA"], "--location", "Room 3"], "bob"),
        Cmd("paper-inventory", ["paper", "inventory", "--found", f"{r['docA']}=Room 1"], "bob"),
        Cmd("member-rename", ["member", "rename", "staff", "--display-name", "王小明"], "alice"),
        Cmd("dossier-close", ["dossier", "close", r["A"], "--date", day], "bob"),
        # A restore into a new directory, by a member (its entry binds the restored key files).
        Cmd("backup-restore", ["backup", "restore", "file://{root}/target", "latest", "{root}/restored"], "alice",
            base="backup"),
    ]


def test_more_write_commands_make_all_they_wrote_durable(base):  # noqa: F811
    scratch = Path(tempfile.mkdtemp(dir=base.scratch.parent))
    found: list[str] = []
    for cmd in _more(base.refs):
        steps = _journal_truncation(_trace(cmd, base, scratch))
        assert steps, cmd.name
        where = str(scratch / cmd.name)  # the vault, and beside it the identity keygen writes
        # A restore writes the history's files as any others (its checkpoint is no commit there): its
        # commit point is the entry it appends, binding the restored key files.
        commit = _appended if cmd.name == "backup-restore" else _commit
        found += [f"{cmd.name}: {x.replace(where, '')}"
                  for x in not_durable_at_commits(steps, where, commit=commit, exempt=_exempt_outside_vault(where))]
    assert not found, "\n".join(found)


def _exempt_outside_vault(root: str):
    """Beside the vault, only what a command writes for the member (an identity, a restored vault)
    counts: the client's state directory and the test's own files are left out."""
    return lambda p: _exempt(p) or not (p.startswith((f"{root}/vault", f"{root}/restored")) or p == f"{root}/new.key")


def test_the_model_finds_what_a_power_cut_would_take():
    """The model itself, on steps spelt out: a name made but never synced before a commit, bytes
    renamed into place unsynced, and the same done right."""
    top = "/v"
    bad = [("mkdir", "/v/dossiers/x"), ("create", "/v/.tmp-writes/.tmp-m.toml.1a2b"),
           ("rename", "/v/dossiers/x/m.toml"), ("fsync", "/v/dossiers/x"),
           ("append", "/v/audit/log.jsonl"), ("fsync", "/v/audit/log.jsonl")]
    found = not_durable_at_commits(bad, top, commit=_commit, exempt=_exempt)
    assert any("the name x in /v/dossiers" in f and f.startswith("step 5") for f in found)
    assert any("the bytes of /v/dossiers/x/m.toml" in f and f.startswith("step 5") for f in found)
    assert any(f.startswith("at the end") for f in found)
    good = [("mkdir", "/v/dossiers/x"), ("fsync", "/v/dossiers"), ("create", "/v/.tmp-writes/.tmp-m.toml.1a2b"),
            ("fsync", "/v/.tmp-writes/.tmp-m.toml.1a2b"), ("rename", "/v/dossiers/x/m.toml"),
            ("fsync", "/v/dossiers/x"), ("append", "/v/audit/log.jsonl"), ("fsync", "/v/audit/log.jsonl")]
    assert not_durable_at_commits(good, top, commit=_commit, exempt=_exempt) == []
    # a removal is durable only with its directory; a syncfs makes everything durable
    assert not_durable_at_commits([("unlink", "/v/keys/k.age")], top, commit=_commit, exempt=_exempt)
    assert not_durable_at_commits([("unlink", "/v/keys/k.age"), ("sync", "/v/keys")], top, commit=_commit,
                                  exempt=_exempt) == []


def test_a_restore_without_syncfs_makes_every_directory_it_made_durable(base, monkeypatch):  # noqa: F811
    """Where there is no ``syncfs`` (another platform, a file system not known to be local), a
    restore fsyncs each file and each directory it made, up to the new vault's own: a power cut after
    its entry binding the key files takes no dossier's directory with it."""
    from vault.store import syncing

    monkeypatch.setattr(syncing, "_SYNCFS", [None])  # (the forked command inherits it)
    scratch = Path(tempfile.mkdtemp(dir=base.scratch.parent))
    cmd = next(c for c in _more(base.refs) if c.name == "backup-restore")
    steps = _journal_truncation(_trace(cmd, base, scratch))
    assert not any(kind == "sync" for kind, _ in steps)
    assert any(kind == "mkdir" and "/restored/dossiers/" in p for kind, p in steps)
    where = str(scratch / cmd.name)
    found = not_durable_at_commits(steps, where, commit=_appended, exempt=_exempt_outside_vault(where))
    assert not found, "\n".join(x.replace(where, "") for x in found)
