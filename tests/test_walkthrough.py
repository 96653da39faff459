"""docs/walkthrough.*.md are what the commands print today: dev/walkthrough runs them again and the
result matches the committed pages (keys, ids, dates and times aside)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = ("walkthrough.en.md", "walkthrough.zh-CN.md")

_VARYING = [
    (re.compile(r"\b(?:[0-9a-f]{4} ){7}[0-9a-f]{4}\b"), "<fingerprint>"),
    (re.compile(r"\b[0-9a-f]{8,}\b"), "<id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b(?:19|20)\d{2}\b"), "<year>"),
]


def normalise(text: str) -> str:
    for pattern, repl in _VARYING:
        text = pattern.sub(repl, text)
    return text


def test_the_walkthrough_is_what_the_commands_print(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "dev" / "walkthrough"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    for page in PAGES:
        committed = (REPO / "docs" / page).read_text(encoding="utf-8")
        fresh = (tmp_path / page).read_text(encoding="utf-8")
        assert normalise(committed) == normalise(fresh), f"docs/{page} is stale: run dev/walkthrough"
    zh = (REPO / "docs" / "walkthrough.zh-CN.md").read_text(encoding="utf-8")
    en = (REPO / "docs" / "walkthrough.en.md").read_text(encoding="utf-8")
    assert "vault: 错误：没有文件" in zh and "用法: vault request access" in zh
    assert "vault: error: no document" in en and "Usage: vault request access" in en


def test_normalising_keeps_what_matters():
    a = "E-2026-000001 checked 2026-12-06T08:00:00Z fingerprint d8e0 23b7 47f0 b909 9ade b158 18b0 d0fb"
    b = "E-2027-000001 checked 2027-01-02T09:10:11Z fingerprint 0000 1111 2222 3333 4444 5555 6666 7777"
    assert normalise(a) == normalise(b)
    assert normalise("E-2026-000001") != normalise("E-2026-000002")  # a different number is a change
