"""The command line in the reader's language: errors, hints, help, tables and reports in Chinese under
VAULT_LANG=zh_CN (no system locale needed); --json and error codes the same in every language; progress
bars on a terminal only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from office import on_a_terminal
from vault import errors
from vault.i18n import from_environment

ZH = {"VAULT_LANG": "zh_CN"}
EN = {"VAULT_LANG": "en"}


pytestmark = pytest.mark.office(dossier={"name": "Zhang Min Trading"}, doc="contract " * 40_000)


def _error_lines(res) -> tuple[str, str]:
    lines = res.stderr.splitlines()
    assert len(lines) == 2 and res.exit_code != 0, res.output
    return lines[0], lines[1]


def test_the_language_comes_from_the_environment_without_a_system_locale():
    # zh_CN is not installed on most servers; the choice never asks the C library.
    assert from_environment({"LANG": "zh_CN.UTF-8"}) == "zh_Hans"
    assert from_environment({"VAULT_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}) == "en"


def test_errors_and_hints_in_chinese(office):
    error, hint = _error_lines(office.run("doc", "view", f"{office.number}/0099", who="bob", ok=False, env=ZH))
    assert error == f"vault: 错误：没有文件 {office.number}/0099"
    assert hint == f"vault: 提示：请查看 'vault doc list {office.number}'"
    # The same error in English: the library's message, rendered at the command line.
    error, _ = _error_lines(office.run("doc", "view", f"{office.number}/0099", who="bob", ok=False, env=EN))
    assert error == f"vault: error: no document {office.number}/0099"
    # A class's default hint, and a usage error of click's own.
    _, hint = _error_lines(office.run("member", "show", "nobody", ok=False, env=ZH))
    assert hint == "vault: 提示：请查看 'vault member list'"
    error, hint = _error_lines(office.run("dossier", "list", "--bogus", ok=False, env=ZH))
    assert error == "vault: 错误：没有选项 '--bogus'。"
    assert hint.startswith("vault: 提示：请查看 '") and hint.endswith(" dossier list --help'")  # the runner's name
    # An option the library names (replaces) keeps its leading dashes in Chinese too.
    files = [str(office.root / "pass"), str(office.root / "pass")]
    error, _ = _error_lines(office.run("doc", "add", office.number, *files, "--category", "other", "--source", "s",
                                       "--date", "2026-01-01", "--original", "--replaces", office.doc, who="bob",
                                       ok=False, env=ZH))
    assert error == "vault: 错误：--replaces 只能对应一个新文件"


def test_help_in_chinese(office):
    top = office.run("--help", env=ZH).stdout
    assert top.startswith("用法: ") and "选项:" in top and "命令:" in top
    assert "客户卷宗。" in top and "显示此帮助信息并退出。" in top  # the lazy table's summaries, click's own
    sub = office.run("dossier", "create", "--help", env=ZH).stdout
    assert "建立卷宗；打印其档案编号。" in sub and "客户名称（密封）。" in sub and "[必填]" in sub
    assert "Create a dossier" not in sub


def test_tables_and_reports_in_chinese(office):
    listing = office.run("dossier", "list", env=ZH).stdout
    assert office.number in listing and "1 份文件" in listing
    checked = office.run("check", who="bob", env=ZH).stdout
    assert "个卷宗、1 份文件" in checked and "没有问题" in checked and "指纹：" in checked
    assert "条记录；完好" in office.run("audit", "verify", env=ZH).stdout
    assert office.run("request", "list", who="bob", env=ZH).stdout.strip() == "（没有申请）"
    # A damaged file is named in a Chinese report line; the file name itself is not translated.
    doc_dir = office.vault_dir / "dossiers"
    target = next(doc_dir.glob("*/documents/*.age"))
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    res = office.run("check", who="bob", ok=False, env=ZH)
    assert res.exit_code == 1 and "问题：dossiers/" in res.stdout and "密文哈希与清单不符" in res.stdout


@pytest.mark.parametrize("args", [
    ("dossier", "list"), ("member", "list"), ("doc", "list", "{number}"), ("dossier", "show", "{number}"),
    ("check",), ("policy", "show"), ("request", "list"), ("retention", "report"), ("review", "due"),
])
def test_json_is_the_same_in_every_language(office, args):
    args = tuple(a.format(number=office.number) for a in args)
    en = office.run(*args, "--json", who="bob", env=EN).stdout
    zh = office.run(*args, "--json", who="bob", env=ZH).stdout
    assert en == zh and json.loads(en) is not None


def test_json_errors_carry_a_stable_code_in_english(office):
    missing = f"{office.number}/0099"
    outs = {}
    for lang, env in (("en", EN), ("zh", ZH)):
        res = office.run("doc", "history", missing, "--json", who="bob", ok=False, env=env)
        outs[lang] = json.loads(res.stdout)
    assert outs["en"] == outs["zh"] == {"error": {"code": "not-found", "message": f"no document {missing}",
                                                  "hint": f"see 'vault doc list {office.number}'"}}
    res = office.run("dossier", "list", "--json", "--offset", "x", ok=False, env=ZH)
    assert res.exit_code == 2


def test_every_error_class_has_its_own_stable_code():
    classes = [errors.VaultError, *errors.VaultError.__subclasses__()]
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(codes) and all(c.isascii() and c == c.lower() for c in codes)
    assert errors.InputError("x", code="bad-date").code == "bad-date"  # a raise may be more specific


def test_a_plugins_own_error_text_still_reaches_the_user(office):
    # Plugins raise VaultError("any text"): shown as written in every language (no catalogue entry).
    err = errors.PluginError("counter service unreachable", hint="ask the operator")
    assert str(err) == "counter service unreachable" and err.hint == "ask the operator"
    assert str(errors.VaultError(message="said by keyword")) == "said by keyword"
    # A hint with values reads filled in, as before messages were catalogued.
    assert errors.NotFoundError("no document {d}", hint="see {n}", d="A/1", n="A").hint == "see A"
    assert err.render(lambda s: {"x": "y"}.get(s, s)) == "counter service unreachable"


# Progress bars: bytes, rate and time left, on a terminal only.

def _env(office, **extra) -> dict[str, str]:
    return dict(os.environ, VAULT_DIR=str(office.vault_dir), VAULT_IDENTITY=str(office.ident("bob")),
                VAULT_PASSPHRASE_FILE=str(office.root / "pass"), VAULT_AGENT_SOCK=str(office.root / "no-agent"),
                **extra)


def _piped(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vault", *args], env=env, capture_output=True, timeout=120)


def test_long_commands_show_a_bar_on_a_terminal_and_none_in_a_pipe(office, tmp_path):
    target = tmp_path / "offsite"
    office.run("backup", "run", str(target))
    cases = [
        ("checking", ["check"]),
        ("decrypting", ["doc", "view", office.doc, "--output", str(tmp_path / "{n}.out")]),
        ("restoring", ["backup", "restore", str(target), "latest", str(tmp_path / "{n}.restored")]),
        ("reading", ["backup", "verify", str(target), "--read-data"]),
    ]
    for n, (label, template) in enumerate(cases):
        args = [a.format(n=n) for a in template]
        p, shown = on_a_terminal(args, _env(office))
        assert p.returncode == 0, shown
        text = shown.decode()
        assert label in text and "100%" in text and "/s" in text and "kB" in text, text
        assert "\r" in text and text.endswith("\n")
        args = [a.format(n=f"{n}-piped") for a in template]
        p = _piped(args, _env(office))
        assert p.returncode == 0 and p.stderr == b"", p.stderr


def test_a_bar_in_chinese_and_none_under_json_evenon_a_terminal(office, tmp_path):
    p, shown = on_a_terminal(["check"], _env(office, VAULT_LANG="zh_CN"))
    assert p.returncode == 0 and "正在检查" in shown.decode() and "/秒" in shown.decode() and "用时" in shown.decode()
    p, shown = on_a_terminal(["check", "--json"], _env(office))
    assert p.returncode == 0 and shown == b"" and json.loads(p.stdout)["ok"]
    p, shown = on_a_terminal(["doc", "export", office.doc, "--output", str(tmp_path / "x")], _env(office))
    assert p.returncode != 0 and b"exporting" not in shown  # refused before any byte: no copy approval


def test_review_mail_and_report_files_in_chinese(office, tmp_path, smtp):
    controller, inbox = smtp
    office.run("review", "notify", "--notifier", "smtp", "--smtp-host", "127.0.0.1", "--smtp-port",
               str(controller.port), "--from", "archive@example.org", "--to", "everyone@example.org",
               who="bob", env=ZH)
    [(_, mail)] = inbox.messages
    assert mail["Subject"].startswith("档案复核 ") and "个卷宗需要处理" in mail["Subject"]
    body = mail.get_content()
    assert "客户档案定期复核" in body and office.number in body and "请核实这些卷宗" in body
    reports = tmp_path / "reports"
    reports.mkdir()
    office.run("review", "notify", "--report-dir", str(reports), who="bob", env=ZH)
    [report] = reports.iterdir()
    text = report.read_text(encoding="utf-8")
    assert text.startswith("收件部门：sales\n主题：档案复核 ") and "不完整" in text
    # The same run in English writes English (the language is the environment's, not the vault's).
    office.run("review", "notify", "--report-dir", str(tmp_path), who="bob", env=EN)
    assert next(tmp_path.glob("review-*.txt")).read_text().startswith("To: department sales\nSubject: Archive review")
