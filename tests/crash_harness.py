"""Crash injection for every write command: run a command in a forked child that the store's crash seam
(``vault.store.seam``) stops at one durable step, then judge what it left.

The parent (the pytest process) has imported everything and holds the test identities' cheap work
factor, so a fork costs milliseconds where a new Python process and an scrypt unlock would cost a
second: a point is a copy of the prepared tree, a fork that runs the CLI's ``main`` in-process until
the seam's ``os._exit``, and a few more forks for ``check``, ``repair`` and the retry.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vault.clock import Clock
from vault.store import seam

# Steps after which a stop leaves exactly the files a stop before the next step leaves (an fsync
# makes nothing visible to a process that dies; only a lost page cache would tell them apart).
SAME_STATE_AS_NEXT = ("fsync", "sync")


def distinct_points(steps: list[tuple[str, str]]) -> list[int]:
    """The steps to stop before so that every state a stop can leave is reached once.

    A stop just after step k leaves what a stop just before step k+1 leaves, and one before an fsync
    what one before the step it follows leaves. A stop before the rename of a complete temporary
    leaves what a stop before that temporary was created leaves, plus the temporary — which every
    reader ignores and every writer removes — so it is reached too, except under ``keys/`` (where
    the sweep also looks at what a temporary would open). Step 0 is the run that is not stopped.
    """
    points = [0]
    made: str | None = None  # the name of the file whose temporary the last step created
    for i, (kind, path) in enumerate(steps, 1):
        if kind in SAME_STATE_AS_NEXT:
            continue
        p = Path(path)
        # A temporary is made beside its file, or in the work directory (under the exclusive lock),
        # and renamed over its file by the next step that is not a sync.
        renamed, made = made, (p.name[len(".tmp-"):].rsplit(".", 1)[0] if kind == "create"
                               and p.name.startswith(".tmp-") else None)
        if kind == "rename" and p.name == renamed and "/keys/" not in path:
            continue
        points.append(i)
    return points


@dataclass
class Run:
    """What one CLI run in a forked child gave."""

    code: int
    stdout: str
    stderr: str
    steps: list[tuple[str, str]] | None = None

    @property
    def crashed(self) -> bool:
        return self.code == seam.CRASH_EXIT

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    def one_line_error(self) -> bool:
        lines = self.stderr.strip().splitlines()
        return (self.code not in (0, seam.CRASH_EXIT) and len(lines) == 2 and lines[0].startswith("vault: error: ")
                and lines[1].startswith("vault: hint: "))


def env_for(root: Path, ids: Path, who: str | None) -> dict[str, str | None]:
    return {"VAULT_DIR": str(root / "vault"), "VAULT_PASSPHRASE_FILE": str(ids / "pass"),
            "VAULT_AGENT_SOCK": str(root / "no-agent.sock"), "VAULT_STATE_DIR": str(root / "state"),
            "VAULT_LANG": "en",  # the retries' refusals are matched in English
            "VAULT_IDENTITY": str(ids / f"{who}.key") if who else None}


def run_cli(argv: list[str], env: dict[str, str | None], *, crash_at: int = 0, full: bool = False,
            trace: bool = False, at: Any = None, workdir: Path) -> Run:
    """Run ``vault ARGV`` in a forked child; ``crash_at`` arms the seam (``full``: the disk is full
    from that step on instead), ``trace`` lists the steps."""
    out, err, steps_file = workdir / ".out", workdir / ".err", workdir / ".steps"
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 99
        try:
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            sys.stdout = open(out, "w", encoding="utf-8", errors="surrogateescape")
            sys.stderr = open(err, "w", encoding="utf-8", errors="surrogateescape")
            sys.stdin = open(os.devnull)
            steps: list[tuple[str, str]] = []
            seam.arm(crash_at, full=full, trace=steps if trace else None)
            from vault.cli import cli

            try:
                # The command line's clock: fixed at ``at`` (given as its context object), else the machine's.
                cli.main(args=argv, prog_name="vault", standalone_mode=True, obj=Clock(at) if at is not None else None)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            seam.disarm()
            if trace:
                steps_file.write_text(json.dumps(steps))
        except BaseException:  # noqa: BLE001 - a traceback is what the test looks for
            traceback.print_exc(file=sys.stderr)
            code = 98
        finally:
            with __import__("contextlib").suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    res = Run(code, out.read_text(errors="replace") if out.exists() else "",
              err.read_text(errors="replace") if err.exists() else "")
    if trace and steps_file.exists():
        res.steps = [tuple(s) for s in json.loads(steps_file.read_text())]
    for f in (out, err, steps_file):
        f.unlink(missing_ok=True)
    return res


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)


def in_parallel(jobs: list[Any], work: Callable[[Any], dict], *, workers: int) -> list[dict]:
    """Run ``work(job)`` for every job in forked workers, ``workers`` at a time; returns the results
    in order (a worker that dies gives ``{"died": exit code}``)."""
    results: dict[int, dict] = {}
    running: dict[int, tuple[int, str]] = {}
    pending = list(enumerate(jobs))
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    while pending or running:
        while pending and len(running) < workers:
            i, job = pending.pop(0)
            out = tmp / f"crash-result-{os.getpid()}-{i}.json"
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    out.write_text(json.dumps(work(job)))
                except BaseException:  # noqa: BLE001
                    out.write_text(json.dumps({"worker_error": traceback.format_exc()}))
                finally:
                    os._exit(code)
            running[pid] = (i, str(out))
        pid, status = os.wait()
        if pid not in running:
            continue
        i, out = running.pop(pid)
        try:
            results[i] = json.loads(Path(out).read_text())
        except (OSError, ValueError):
            results[i] = {"died": os.waitstatus_to_exitcode(status)}
        Path(out).unlink(missing_ok=True)
    return [results[i] for i in range(len(jobs))]


# -- what a power cut may take ------------------------------------------------------------------------
# A stop (``kill -9``) keeps every byte written; a power cut keeps only what was made durable. With
# the steps of a run (``trace``) the model below follows what is durable: a file's bytes after an
# fsync of it, a name in a directory (made, renamed into, removed) after an fsync of that directory,
# everything after a syncfs ("sync"); a file renamed from a temporary carries the temporary's bytes,
# durable or not. A commit point is durable only if all that comes before it is: otherwise a power
# cut can keep the history's entry (or the target's snapshot) and lose what it names — a state no
# stop leaves, which the crash sweep therefore never judged.

#: Step kinds that change a file's bytes.
CONTENT_STEPS = frozenset({"create", "write", "overwrite", "truncate", "append", "journal"})


def not_durable_at_commits(steps: list[tuple[str, str]], top: str, *, commit: Callable[[str, str], bool],
                           exempt: Callable[[str], bool]) -> list[str]:
    """What is not yet durable below ``top`` at each step ``commit(kind, path)`` says is a commit
    point, and when the run ends; paths ``exempt`` says a power cut may lose are left out."""
    dirty: dict[str, int] = {}            # a file's bytes: the step that last changed them
    names: dict[tuple[str, str], int] = {}  # a name in a directory: the step that last changed it
    found: list[str] = []

    def below(p: str) -> bool:
        return (p == top or p.startswith(top + "/")) and not exempt(p)

    def pending() -> list[str]:
        return [f"the bytes of {p} (step {i})" for p, i in dirty.items() if below(p)] + \
               [f"the name {n} in {d} (step {i})" for (d, n), i in names.items() if below(f"{d}/{n}")]

    for i, (kind, path) in enumerate(steps, 1):
        parent, name = os.path.split(path)
        if commit(kind, path):
            found += [f"step {i} ({kind} {path}): not durable before it: {x}" for x in pending()
                      if not x.startswith(f"the bytes of {path} ")]
        if kind in CONTENT_STEPS:
            dirty[path] = i
            if kind == "create":
                names[(parent, name)] = i
        elif kind == "mkdir":
            names[(parent, name)] = i
        elif kind in ("unlink", "rmtree"):
            names[(parent, name)] = i
            for p in [p for p in dirty if p == path or p.startswith(path + "/")]:
                del dirty[p]
            for k in [k for k in names if k[0] == path or k[0].startswith(path + "/")]:
                del names[k]
        elif kind == "rename":
            names[(parent, name)] = i
            # the temporary it came from: the newest one made for this name (``.tmp-<name>.<random>``)
            src = next((q for k, q in reversed(steps[:i - 1])
                        if k == "create" and os.path.basename(q).startswith(f".tmp-{name}.")), None)
            if src is not None and src in dirty:
                dirty[path] = dirty.pop(src)
            else:
                dirty.pop(path, None)
        elif kind == "fsync":  # a file's bytes, or the names in a directory
            dirty.pop(path, None)
            for k in [k for k in names if k[0] == path]:
                del names[k]
        elif kind == "sync":  # syncfs: the whole file system
            dirty.clear()
            names.clear()
        else:
            found.append(f"step {i}: a step of unknown kind {kind!r}")
    found += [f"at the end: not durable: {x}" for x in pending()]
    return found
