"""Runs vault commands in-process for a test that has set up hostile conditions (a read-only mount,
a file size limit) for this whole process; prints one JSON result per command on standard output."""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from vault.cli import cli


def main() -> None:
    results = []
    for case in json.load(sys.stdin):
        res = CliRunner().invoke(cli, case["argv"], env=case["env"])
        crash = res.exception if res.exception and not isinstance(res.exception, SystemExit) else None
        results.append({"exit": res.exit_code, "stderr": res.stderr, "crash": repr(crash) if crash else None})
    # Standard output is a pipe, which no file size limit applies to.
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
