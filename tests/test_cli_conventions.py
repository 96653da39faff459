"""Conventions every command keeps: --json, hints, no Python repr, keys people can handle, completion."""

from __future__ import annotations

import csv
import io
import json
import re

import click
import pytest

from office import MARKERS
from vault.cli import cli

# Commands whose output is not a result to parse: the completion script is shell code, and the portal
# is a long-running service whose output is its log.
NOT_DATA = {("completion",), ("portal", "serve")}
# What a Python repr looks like when it leaks into text output.
REPR = re.compile(r"\{'|\['|': |\bNone\b|\bTrue\b|\bFalse\b")


def leaf_commands(cmd: click.Command = cli, path: tuple[str, ...] = ()):
    """Every command of the tree, loading the lazily imported ones as ``vault COMMAND`` would."""
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            yield from leaf_commands(cmd.get_command(ctx, name), path + (name,))
    else:
        yield path, cmd


def test_the_walk_sees_the_whole_tree():
    paths = {p for p, _ in leaf_commands()}
    assert {("doc", "view"), ("destroy", "verify"), ("backup", "restore"), ("completion",)} <= paths
    assert len(paths) > 55


@pytest.mark.parametrize("path", [p for p, _ in leaf_commands() if p not in NOT_DATA], ids=" ".join)
def test_every_command_that_prints_takes_json(path):
    cmd = dict(leaf_commands())[path]
    assert "as_json" in {p.name for p in cmd.params}, f"vault {' '.join(path)} has no --json"


pytestmark = pytest.mark.office(dossier={"name": MARKERS["name"], "contact": MARKERS["contact"]},
                                doc="=1+1 a document\n")


def one_error(res) -> tuple[str, str]:
    """A refusal is exactly one error line and one hint line, exit non-zero, no traceback."""
    lines = res.stderr.strip().splitlines()
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert len(lines) == 2 and lines[0].startswith("vault: error: ") and lines[1].startswith("vault: hint: "), lines
    return lines[0], lines[1]


def test_every_library_error_reaches_the_user_with_a_hint(office):
    cases = [
        ("doc", "view", "E-2099-000001/0001"),          # not found
        ("request", "approve", "R-000001"),              # not found
        ("grant", "revoke", "G-000009"),                 # not found
        ("hold", "remove", office.number, "--reason", "x"),  # not found: no hold
        ("doc", "add", office.number, "/nonexistent", "--category", "contract", "--source", "s",
         "--date", "2026-01-01", "--original"),          # input error
    ]
    for args in cases:
        one_error(office.run(*args, who="bob", ok=False))


def test_text_output_never_shows_a_python_repr(office, tmp_path):
    office.run("dossier", "close", office.number, "--date", "2026-03-01", who="bob")
    office.run("destroy", "request", office.doc, "--reason", "duplicate", who="bob")
    office.run("destroy", "approve", "D-000001", "--override-retention", "test", who="alice")
    office.run("destroy", "execute", "D-000001", who="alice")
    outputs = {
        "certificate": office.run("destroy", "certificate", "D-000001", who="alice").stdout,
        "verify": office.run("destroy", "verify", "D-000001", who="alice").stdout,
        "member show": office.run("member", "show", "bob", who="alice").stdout,
        "dossier show": office.run("dossier", "show", office.number, who="bob").stdout,
        "check": office.run("check", who="alice").stdout,
    }
    for name, text in outputs.items():
        assert not REPR.search(text), f"{name} shows a Python repr: {REPR.search(text).group(0)!r} in\n{text}"
    assert "destroyed:" in outputs["certificate"] and f"- number: {office.doc}" in outputs["certificate"]


def test_commands_that_only_confirmed_now_answer_in_json(office):
    assert office.json("hold", "add", office.number, "--reason", "audit", who="alice") == {"held": office.number}
    assert office.json("hold", "remove", office.number, "--reason", "settled", who="alice") == {"lifted": office.number}
    assert office.json("intake", "key")["recipient"].startswith("age1pq1")
    closed = office.json("dossier", "close", office.number, "--date", "2026-03-01", who="bob")
    assert closed == {"closed": office.number, "date": "2026-03-01"}


def test_key_file_and_public_key_from_an_identity_or_the_vault(office, tmp_path):
    line = office.keygen("carol")
    key_file = tmp_path / "carol.pub"
    key_file.write_text(line + "\n")
    office.run("member", "add", "carol", "--key-file", str(key_file), "--role", "staff", "--dept", "sales", who="alice")
    assert office.json("keygen", "--public", str(office.ident("carol")))["public_key"] == line
    assert office.run("member", "show", "carol", "--key").stdout.strip() == line
    shown = office.json("member", "show", "carol")
    assert shown["roles"] == ["staff"] and shown["dept"] == "sales" and shown["key"] == line
    both = office.run("member", "add", "dave", "--key", line, "--key-file", str(key_file), "--role", "staff",
                      "--dept", "sales", who="alice", ok=False)
    assert both.exit_code == 2 and "--key-file" in both.stderr
    assert office.run("keygen", who="alice", ok=False).exit_code == 2  # neither --out nor --public


def test_init_takes_the_key_from_a_file(office, tmp_path):
    key_file = tmp_path / "alice.pub"
    key_file.write_text(office.keys["alice"])
    out = office.json("init", str(tmp_path / "second"), "--supervisor", "alice", "--key-file", str(key_file))
    assert re.fullmatch(r"([0-9a-f]{4} ){7}[0-9a-f]{4}", out["fingerprint"])


def test_doc_add_reads_standard_input_without_a_plaintext_copy(office):
    content = MARKERS["content"].encode() * 5000
    e = {"VAULT_DIR": str(office.vault_dir), "VAULT_PASSPHRASE_FILE": str(office.root / "pass"),
         "VAULT_IDENTITY": str(office.ident("bob"))}
    res = office.runner.invoke(cli, ["doc", "add", office.number, "-", "--filename", "scan.pdf", "--category",
                                     "contract", "--source", "scanner", "--date", "2026-02-02", "--original",
                                     "--json"], input=content, env=e, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    docno = json.loads(res.stdout)["number"]
    out = office.root / "back.bin"
    office.run("doc", "view", docno, "--output", str(out), who="bob")
    assert out.read_bytes() == content
    titles = {r["number"]: r.get("filename") for r in office.json("doc", "list", office.number, who="bob")}
    assert titles[docno] == "scan.pdf"
    blob = b"".join(p.read_bytes() for p in office.vault_dir.rglob("*") if p.is_file())
    assert MARKERS["content"].encode() not in blob


def test_archive_numbers_are_case_insensitive(office):
    lower = office.number.lower()
    assert lower != office.number
    assert office.json("dossier", "show", lower, who="bob")["number"] == office.number
    assert [r["number"] for r in office.json("doc", "list", lower, who="bob")] == [office.doc]
    out = office.root / "v.txt"
    office.run("doc", "view", office.doc.lower(), "--output", str(out), who="bob")
    assert out.read_text() == "=1+1 a document\n"


def test_a_plain_path_is_a_file_backup_target(office, tmp_path):
    target = tmp_path / "offsite"
    office.json("backup", "run", str(target))
    assert len(office.json("backup", "list", target.as_uri())) == 1
    assert len(office.json("backup", "list", str(target))) == 1


def test_an_allowlist_entry_that_names_no_plugin_is_an_error(office):
    res = office.run("plugins", "list", ok=False, env={"VAULT_LOAD_PLUGINS": "vault-checkdigit,no-such-plugin"})
    line, _ = one_error(res)
    assert "no-such-plugin" in line and res.exit_code == 1


def test_catalogue_csv_has_a_bom_and_defuses_formulas(office):
    req = office.json("request", "copy", office.number, "--purpose", "copy", who="bob")["number"]
    office.run("request", "approve", req, who="alice")
    out = office.root / "cat.csv"
    office.run("dossier", "export", office.number, "--format", "csv", "--output", str(out), who="bob")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    office.run("dossier", "export", office.number, "--format", "csv", "--no-sealed", "--no-bom", "--output",
               str(office.root / "plain.csv"), who="bob")
    assert (office.root / "plain.csv").read_bytes().startswith(b"number,")
    # A sealed field a customer controls (the title) cannot become a formula in a spreadsheet.
    f = office.root / "evil.txt"
    f.write_text("x")
    office.json("doc", "add", office.number, str(f), "--category", "other", "--source", "desk", "--date",
                "2026-01-01", "--original", "--title", "=HYPERLINK(\"http://x\")", who="bob")
    req = office.json("request", "copy", office.number, "--purpose", "copy", who="bob")["number"]
    office.run("request", "approve", req, who="alice")
    out2 = office.root / "cat2.csv"
    office.run("dossier", "export", office.number, "--format", "csv", "--output", str(out2), who="bob")
    rows = list(csv.DictReader(io.StringIO(out2.read_text(encoding="utf-8-sig"))))
    assert "'=HYPERLINK(\"http://x\")" in [r["title"] for r in rows]
    assert not any(str(v).startswith(("=", "+", "@")) for r in rows for v in r.values())


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(office, shell):
    script = office.run("completion", shell).stdout
    assert "_VAULT_COMPLETE" in script and "vault" in script


def test_the_readme_names_every_command():
    """The README's command table is checked against the live click tree, so it cannot fall behind."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    visible = [p for p, cmd in leaf_commands() if not cmd.hidden]
    missing = [" ".join(p) for p in visible if "`" + " ".join(p) not in readme]
    assert not missing, f"README.md does not mention: {missing}"
