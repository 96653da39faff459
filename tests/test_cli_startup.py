"""Start-up pays only for what the command uses: `vault --help` imports no heavy module, and the lazy
command table agrees with the commands themselves."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault.cli import lazy

REPO = Path(__file__).resolve().parent.parent
CLI_DIR = REPO / "vault" / "cli"

# Modules (and packages: a prefix matches its submodules) that `vault --help` must not import: the
# crypto stack, schema validation, plugin discovery, the backup engine and S3, mail, and the library.
HEAVY = ["cryptography", "vault.crypto", "jsonschema", "referencing", "importlib.metadata", "pluggy",
         "boto3", "botocore", "vault.backup", "vault.plugins", "vault.store", "vault.archive", "vault.office",
         "vault.agent", "concurrent.futures", "smtplib", "email"]


def imported_by(*args: str) -> set[str]:
    """The modules a fresh `python -X importtime -m vault ARGS` imports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "vault", *args], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_help_imports_nothing_heavy():
    modules = imported_by("--help")
    assert "click" in modules and "vault.cli" in modules  # the measurement sees imports at all
    assert heavy_in(modules) == [], "vault --help imports heavy modules"


def test_a_command_imports_only_its_own_modules():
    modules = imported_by("agent", "--help")
    assert "vault.cli.agent" in modules
    assert not {"vault.cli.core", "vault.cli.backup", "vault.cli.review"} & modules
    assert heavy_in(modules) == []


def test_help_lists_the_same_as_the_loaded_commands():
    code = ("from click.testing import CliRunner\nfrom vault.cli import cli, lazy\n"
            "a = CliRunner().invoke(cli, ['--help']).output\nlazy.load_all(cli)\n"
            "b = CliRunner().invoke(cli, ['--help']).output\nprint(a == b and 'same' or a + '\\n---\\n' + b)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.stdout.strip() == "same", res.stdout + res.stderr


def test_table_matches_every_command_module():
    from vault.cli import cli

    for path in sorted(CLI_DIR.glob("*.py")):
        importlib.import_module(f"vault.cli.{path.stem}" if path.stem != "__init__" else "vault.cli")
    assert set(cli.commands) == set(lazy.COMMANDS), "a command is missing from (or extra in) vault.cli.lazy.COMMANDS"
    for name, (refs, help_text) in lazy.COMMANDS.items():
        module, attr = refs[0].split(":")
        cmd = getattr(importlib.import_module(module), attr)
        assert cli.commands[name] is cmd, name
        assert (cmd.help or "").split("\n\n")[0].strip() == help_text, f"help of {name} differs from the table"
        assert not cmd.short_help and not cmd.hidden, name


def _subcommands_added_by(path: Path) -> set[tuple[str, str]]:
    """(group attribute, subcommand name) for each ``@<group>.command("name")`` on a group imported from
    another module."""
    tree = ast.parse(path.read_text())
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    added = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute)):
                    continue
                f = dec.func
                if (isinstance(f.value, ast.Name) and f.value.id in imported - {"cli", "click"}
                        and f.attr in ("command", "group")):
                    assert dec.args and isinstance(dec.args[0], ast.Constant), f"{path.name}: name the subcommand"
                    added.add((f.value.id, dec.args[0].value))
    return added


@pytest.mark.parametrize("path", sorted(CLI_DIR.glob("*.py")), ids=lambda p: p.name)
def test_subcommands_added_from_other_modules_are_in_the_table(path):
    owner = {ref.split(":")[1]: name for name, (refs, _) in lazy.COMMANDS.items() for ref in refs[:1]}
    for grp, sub in _subcommands_added_by(path):
        name = owner[grp]
        assert lazy.SUBCOMMANDS.get(name, {}).get(sub) == f"vault.cli.{path.stem}", (
            f"{path.name} adds '{name} {sub}': list it in vault.cli.lazy.SUBCOMMANDS")


def test_doc_view_loads_none_of_the_other_doc_commands():
    modules = imported_by("doc", "view", "--help")
    assert "vault.cli.core" in modules
    assert not {"vault.cli.export", "vault.cli.retention", "vault.cli.maintenance", "vault.cli.review"} & modules
    full = imported_by("dossier", "--help")  # the group's help lists (and so loads) every subcommand
    assert {"vault.cli.export", "vault.cli.retention", "vault.cli.maintenance", "vault.cli.review"} <= full
