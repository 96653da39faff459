"""A fresh clone stands alone: nothing in the project reads a path outside its own tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Spelled in pieces so that this file does not match itself.
OUTSIDE = ("../" + "sha" + "red", '"' + "sha" + "red" + '"')


def test_no_tracked_file_reaches_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    offenders = []
    for name in filter(None, tracked.decode().split("\0")):
        path = REPO / name
        if not path.is_file() or name.startswith("tests/vectors/"):
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        offenders += [f"{name}: {needle}" for needle in OUTSIDE if needle in text]
    assert not offenders, f"these files read outside the repository: {offenders}"


def test_ci_runs_the_readme_commands_in_a_fresh_clone():
    """.ci/run must clone the committed tree elsewhere and run the README's two commands there."""
    ci = (REPO / ".ci" / "run").read_text()
    assert "git clone" in ci and "mktemp -d" in ci
    readme = (REPO / "README.md").read_text().split("```")
    commands = [line for line in readme[1].splitlines()[1:] if line.strip()]
    assert commands == ["./dev/setup && .venv/bin/vault demo ./demo-office", "./dev/test"], commands
