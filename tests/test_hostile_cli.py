"""Every command, every argument, hostile values: one error line, no traceback, the vault unchanged.

The walk covers the click command tree as it is (a new command is walked without a change here).
Each argument in turn gets an empty value, a NUL, a newline, bytes that are not UTF-8 (Linux hands
them to Python as lone surrogates), 1 MiB of text, ``../`` and an absolute path; a file argument
also gets a directory, and an output argument a path inside the vault. A command either refuses in
exactly one ``vault: error:`` line (and an optional ``vault: hint:`` line) with a non-zero exit and
leaves the vault as it was (the audit trail may only have gained entries saying ``refused``), or —
for free text, where a newline or a slash is just text — succeeds.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from office import SALES_DESK, SAM, build_office
from vault.cli import cli

# Free text and filters: a newline, "../" or "/abs" in them is text, so a command may succeed.
FREE_TEXT = {"purpose", "reason", "note", "alias", "address", "legal_rep", "title", "source", "copy_note",
             "override_retention", "name", "contact", "paper_location", "location", "smtp_host", "sender",
             "smtp_user"}
FILTERS = {("audit", "log"): {"number", "member", "since"}, ("review", "due"): {"dept"},
           ("dossier", "completeness"): {"dept"}, ("find",): {"name", "contact", "number"},
           ("register",): {"klass", "dept"}}
# Arguments naming a place to create (a relative "../x" is a legitimate choice; an empty existing
# directory too), or a file to read (any readable file may be archived, wherever it is).
TEXT = {"newline", "dotdot", "absolute"}
PLACES = {("keygen",): {"out": TEXT}, ("init",): {"directory": TEXT | {"directory"}},
          ("demo",): {"directory": TEXT | {"directory"}},
          ("backup", "restore"): {"dest_dir": TEXT | {"directory"}, "target": TEXT},
          ("review", "notify"): {"report_dir": TEXT | {"directory"}},
          ("doc", "view"): {"output": TEXT}, ("doc", "add"): {"files": {"absolute", "in-vault"}},
          ("intake", "submit"): {"files": {"absolute", "in-vault"}},
          ("paper", "inventory"): {"from_file": {"absolute", "in-vault"}},
          # A backup target is a directory like any other: ``backup run`` makes it where it is told
          # (a newline in a name is legal there), and the others read it once it is there.
          **{("backup", c): {"target": TEXT} for c in ("run", "list", "verify", "prune")}}
# Commands that serve until stopped: only the values refused before any command runs are tried on
# them (their own arguments are tested with the server or agent they start).
LONG_RUNNING = {("portal", "serve"), ("agent", "start")}
BOUNDARY = {"empty", "nul", "not-utf8", "long"}
# Values that are legitimate for these arguments and cost seconds to honour (a whole sample office,
# a passphrase hashed at full strength).
SLOW_SUCCESS = {("demo",): {"newline", "dotdot", "directory"}, ("keygen",): {"newline", "dotdot"}}
WHO = {("request", "access"): "staff", ("request", "copy"): "staff", ("request", "approve"): "head",
       ("request", "deny"): "head", ("destroy", "approve"): "sam", ("doc", "view"): "bob"}
FLAGS = {("doc", "add"): ["--original"], ("review", "done"): ["--verified"]}


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # commands load lazily: ask the group, not its table
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


class World:
    """A small office with one of everything an argument can name, and a pristine copy to go back to."""

    def __init__(self, root: Path, mp: pytest.MonkeyPatch) -> None:
        o = self.office = build_office(root, mp, SAM, *SALES_DESK, dossier={"name": "Hostile Customer",
                                                                           "contact": "h@example.org"})
        self.number = o.number
        f = root / "doc.txt"
        f.write_text("content\n")
        self.doc = o.add_doc(self.number, f)
        self.req = o.json("request", "access", self.number, "--purpose", "p", who="staff")["number"]
        o.run("request", "approve", self.req, who="head")
        granted = o.json("request", "access", self.number, "--purpose", "q", who="staff")["number"]
        o.run("request", "approve", granted, who="head")
        self.grant = o.json("grant", granted, who="bob")["number"]
        self.destruction = o.json("destroy", "request", self.doc, "--reason", "r", who="alice")["number"]
        self.intake = o.json("intake", "submit", str(f), "--for", self.number, "--category", "other",
                             "--source", "s", "--date", "2026-01-01")["ids"][0]
        self.file = f
        self.dir = root / "a-directory"
        self.dir.mkdir()
        self.abs_file = root / "abs" / "existing"
        self.abs_file.parent.mkdir()
        self.abs_file.write_text("x")
        self.policy = root / "policy.toml"
        self.policy.write_bytes((o.vault_dir / "policy.toml").read_bytes())
        self.target = f"file://{root / 'offsite'}"
        o.run("backup", "run", self.target)
        self.pristine = root / "pristine"
        shutil.copytree(o.vault_dir, self.pristine, symlinks=True)
        self.state = digest(o.vault_dir)

    def base(self, path: tuple[str, ...]) -> dict[str, str | list[str]]:
        """Valid values for every argument of a command (most of which then fail for another reason)."""
        ids = {("destroy",): self.destruction, ("intake",): self.intake}
        return {
            "number": self.number, "docno": self.doc, "files": [str(self.file)], "category": "other",
            "source": "desk", "date": "2026-03-01", "req": self.req, "grant": self.grant,
            "id": ids.get(path[:1], "x"), "reason": "because", "purpose": "because", "target": self.target,
            "snapshot": "latest", "dest_dir": "restored", "name": "newname", "key": self.office.keys["sam"],
            "roles": ["staff"], "dept": "sales", "customer_type": "enterprise", "business": "network-services",
            "fmt": "json", "output": "exported", "file": str(self.policy), "directory": "newdir",
            "out": "new.key", "supervisor": "alice", "event": "contract-fulfilled", "hours": "2",
            "key_window": "7d", "keep_daily": "1", "read_data_subset": "10%", "upcoming": "30",
            "notifier": "report", "report_dir": "reports", "smtp_port": "25", "note": "n",
        } | ({"name": "Another Customer"} if path[0] == "dossier" else {})

    def restore(self) -> None:
        shutil.rmtree(self.office.vault_dir)
        shutil.copytree(self.pristine, self.office.vault_dir, symlinks=True)


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("hostile")
    w = World(root, mp)
    cwd = root / "cwd" / "a" / "b"  # relative "../../x" lands inside the test's directory
    cwd.mkdir(parents=True)
    mp.chdir(cwd)
    yield w
    mp.undo()


def hostile_values(w: World, param: click.Parameter) -> dict[str, str]:
    values = {"empty": "", "nul": "a\x00b", "newline": "a\nb", "not-utf8": "caf\udce9", "long": "x" * (1 << 20),
              "dotdot": "../../escape", "absolute": str(w.abs_file)}
    if isinstance(param.type, click.Path):
        values["directory"] = tempfile.mkdtemp(dir=w.dir)  # empty, and only this case's
        values["in-vault"] = str(w.office.vault_dir / "audit" / "log.jsonl")
    return values


def _argv(path, cmd: click.Command, vals: dict) -> list[str]:
    argv = list(path if path[0] != "grant" or path[1] != "create" else ("grant",))
    for p in cmd.params:
        if p.name not in vals or getattr(p, "is_flag", False):
            continue
        v = vals[p.name]
        for one in (v if isinstance(v, list) else [v]):
            argv += [one] if isinstance(p, click.Argument) else [p.opts[0], one]
    return argv + FLAGS.get(path, [])


CASES = [(path, p.name) for path, cmd in _commands(cli) for p in cmd.params
         if p.name != "as_json" and not getattr(p, "is_flag", False)]


def assert_refused_cleanly(res, label: str) -> None:
    assert res.exit_code not in (0, None), f"{label}: accepted"
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), \
        f"{label}: raised {res.exception!r}"
    assert "Traceback" not in res.output, label
    lines = res.stderr.splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("vault: error: "), f"{label}: {res.stderr[:500]!r}"
    assert len(lines) == 1 or lines[1].startswith("vault: hint: "), f"{label}: {res.stderr[:500]!r}"


@pytest.mark.parametrize("path, name", CASES, ids=[" ".join(p) + ":" + n for p, n in CASES])
def test_every_argument_refuses_hostile_values(world, path, name):
    w = world
    cmd = dict(_commands(cli))[path]
    param = next(p for p in cmd.params if p.name == name)
    who = WHO.get(path, "alice")
    env = {"VAULT_DIR": str(w.office.vault_dir), "VAULT_PASSPHRASE_FILE": str(w.office.root / "pass"),
           "VAULT_IDENTITY": str(w.office.ident(who))}
    failures = []
    for kind, value in hostile_values(w, param).items():
        if kind in SLOW_SUCCESS.get(path, ()) or (path in LONG_RUNNING and kind not in BOUNDARY):
            continue
        try:
            _one_case(w, path, cmd, name, kind, value, env)
        except AssertionError as e:
            failures.append(str(e).split("\n")[0])
    assert not failures, failures


def _one_case(w, path, cmd, name, kind, value, env) -> None:
    vals = w.base(path)
    vals[name] = [value] if isinstance(vals.get(name), list) else value
    res = CliRunner().invoke(cli, _argv(path, cmd, vals), env=env)
    label = f"vault {' '.join(path)} with {kind} {name}"
    free = (name in FREE_TEXT | FILTERS.get(path, set()) and kind in TEXT) \
        or kind in PLACES.get(path, {}).get(name, ())
    if res.exit_code == 0 and free:
        if digest(w.office.vault_dir) != w.state:
            w.restore()
        return
    if path == ("find",) and res.exit_code == 1 and not res.stderr and kind != "empty":
        return  # nothing found: grep's convention, an answer rather than an error
    if path == ("backup", "verify") and res.exit_code == 1 and not res.stderr and "problem:" in res.stdout:
        return  # verify's answer: the problems it found, one "problem:" line each (FORMAT §16.7)
    try:
        assert_refused_cleanly(res, label)
    finally:
        after = digest(w.office.vault_dir)
        if after != w.state:
            w.restore()
    if after != w.state:
        changed = {k for k in set(after) | set(w.state) if after.get(k) != w.state.get(k)}
        # backups.toml names a target before anything is uploaded to it (so that a destruction reaches
        # whatever may have arrived there): a run that failed afterwards leaves it named, by design.
        allowed = {"audit/log.jsonl", "audit/checkpoint.toml"} | ({"backups.toml"} if path == ("backup", "run") else set())
        assert changed <= allowed, f"{label}: changed {sorted(changed)}"


@pytest.mark.parametrize("option", ["--vault", "--identity"])
def test_global_options_refuse_hostile_values(world, option):
    w = world
    env = {"VAULT_DIR": str(w.office.vault_dir), "VAULT_PASSPHRASE_FILE": str(w.office.root / "pass"),
           "VAULT_IDENTITY": str(w.office.ident("bob"))}
    for kind, value in {"empty": "", "nul": "a\x00b", "newline": "no\nvault", "not-utf8": "caf\udce9",
                        "long": "x" * (1 << 20), "dotdot": "../../no-vault", "directory": tempfile.mkdtemp(dir=w.dir),
                        "file": str(w.abs_file)}.items():
        res = CliRunner().invoke(cli, [option, value, "dossier", "show", w.number], env=env)
        assert_refused_cleanly(res, f"{option} {kind}")
        env_name = "VAULT_DIR" if option == "--vault" else "VAULT_IDENTITY"
        if "\x00" not in value:  # the environment cannot carry a NUL
            res = CliRunner().invoke(cli, ["dossier", "show", w.number], env={**env, env_name: value})
            assert_refused_cleanly(res, f"{env_name} {kind}")
    assert digest(w.office.vault_dir) == w.state

