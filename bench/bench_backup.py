"""Benchmark: ``vault backup run file://…`` against ``restic backup`` on the same synthetic vault.

Run ``python bench/bench_backup.py [--docs 10000] [--size-mib 1024] [--dir /tmp]``. It builds a vault
of ``--docs`` random documents (``--size-mib`` in all) in dossiers of ``--per-dossier`` (10), through the library, then
times three runs of each tool, each a separate process: the first backup, one after 1% of the
documents changed (a new version added to 1% of them), and one with nothing changed. It prints
seconds, the ratio ours/restic (below 1.00 is faster) and the bytes each repository holds. Not a
test: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import compile_like_installed, du, load_line, restic_archive, restic_args, timed_cpu  # same directory

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
MIB = 1024 * 1024
PASSPHRASE = "bench passphrase"


def change(actor, numbers: list[str], docs: int, size: int, root: Path) -> None:
    """A new version of 1% of the documents (new documents replacing old ones)."""
    from vault.office import documents

    src = root / "src"
    src.mkdir(exist_ok=True)
    rnd = random.Random(2)
    changed = max(1, docs // 100)
    for k in range(changed):
        no = numbers[k * len(numbers) // changed]
        old = documents.list_docs(actor, no, with_meta=False)[k % 2]["number"]
        f = src / "new.bin"
        f.write_bytes(rnd.randbytes(size))
        documents.add(actor, no, [f], category="contract", source="bench", date="2026-03-02", original=True,
                      replaces=old)
    shutil.rmtree(src)


def settle(vault_dir: Path) -> None:
    """Leave the build's after-effects out of the timings: flush it, then read the vault once.

    Whichever tool runs first after the build would otherwise also pay for the build's pending
    writeback and any vault file not in the page cache; the other tool then finds a warm cache.
    """
    subprocess.run(["sync"], check=True)
    for p in vault_dir.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass


def _pythonpath(code: Path, shim: Path) -> str:
    """Where a checkout's own code is found first: its ``vault`` and, as ``vault_plugins``, its
    ``plugins`` (the editable install would otherwise give every checkout this one's plugins)."""
    shim.mkdir(exist_ok=True)
    if not (shim / "vault_plugins").exists():
        (shim / "vault_plugins").symlink_to(code / "plugins")
    return f"{code}{os.pathsep}{shim}"


def first_runs(args, work: Path, vault_dir: Path, env: dict[str, str]) -> None:
    """``--first-runs``: first runs only, repeated (each to a new repository, with an empty cache), the
    tools interleaved, so that a change to the first run is measured against the others in one run."""
    import statistics

    tools = {"vault": REPO}
    if args.baseline:
        compile_like_installed(args.baseline)
        tools["baseline"] = args.baseline.resolve()
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    settle(vault_dir)
    loads = [os.getloadavg()[0]]
    for i in range(args.first_runs):
        for name, code in tools.items():
            e = dict(env, PYTHONPATH=_pythonpath(code, work / f"shim-{name}"), PYTHONSAFEPATH="1",
                     XDG_CACHE_HOME=str(work / f"cache-{name}-{i}"))
            argv = [sys.executable, "-m", "vault", "--vault", str(vault_dir), "backup", "run",
                    f"file://{work / f'{name}-{i}'}"]
            wall, cpu = timed_cpu(argv, e)
            times.setdefault(name, []).append(wall)
            cpus.setdefault(name, []).append(cpu)
            shutil.rmtree(work / f"{name}-{i}")
        repo = work / f"restic-{i}"
        e = dict(env, RESTIC_REPOSITORY=str(repo), RESTIC_CACHE_DIR=str(work / f"cache-restic-{i}"))
        subprocess.run(["restic", "init"], env=e, check=True, stdout=subprocess.DEVNULL)
        wall, cpu = timed_cpu(["restic", "backup", "--quiet", str(vault_dir)], e)
        times.setdefault("restic", []).append(wall)
        cpus.setdefault("restic", []).append(cpu)
        shutil.rmtree(repo)
        print(f"round {i + 1}/{args.first_runs} (load {os.getloadavg()[0]:.2f}): "
              + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    loads.append(os.getloadavg()[0])
    r, rc = statistics.median(times["restic"]), statistics.median(cpus["restic"])
    print(f"\n{'first run':<16} {'median s':>9} {'best s':>7} {'÷ restic':>9} {'CPU s':>6} {'CPU ÷ restic':>13}")
    for name, t in times.items():
        c = statistics.median(cpus[name])
        print(f"{name:<16} {statistics.median(t):9.2f} {min(t):7.2f} {statistics.median(t) / r:9.2f} {c:6.2f} {c / rc:13.2f}")
    print(f"\nload average {loads[0]:.2f} before, {loads[1]:.2f} after; {os.cpu_count()} CPUs "
          "(CPU: user + system seconds of the process, medians)")


def main() -> None:
    def more(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--first-runs", type=int, default=0,
                        help="instead of the three runs: N first runs of each tool, interleaved, each to a new "
                             "repository with an empty cache; medians")
        ap.add_argument("--baseline", type=Path, default=None,
                        help="with --first-runs: another checkout (git archive main | tar -x -C DIR) in the same runs")
        ap.add_argument("--vault", type=Path, default=None,
                        help="with --first-runs: back up this existing vault instead of building one")

    args = restic_args(__doc__, more)
    work = Path(tempfile.mkdtemp(prefix="bench-backup-", dir=args.dir))
    try:
        size = args.size_mib * MIB // args.docs
        if args.first_runs and args.vault:
            vault_dir = args.vault.resolve()
            env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(work / "cache"),
                       RESTIC_PASSWORD=PASSPHRASE)
        else:
            (vault_dir, numbers, actor, _), env = restic_archive(args, work, PASSPHRASE)
        if args.first_runs:
            first_runs(args, work, vault_dir, env)
            return
        ours = [sys.executable, "-m", "vault", "--vault", str(vault_dir), "backup", "run", f"file://{work / 'ours'}"]
        theirs = ["restic", "backup", "--quiet", str(vault_dir)]
        rows = []
        for label in ("first run", "1% changed", "nothing changed"):
            if label == "1% changed":
                change(actor, numbers, args.docs, size, work)
            settle(vault_dir)
            (a, ca), (b, cb) = timed_cpu(ours, env), timed_cpu(theirs, env)
            rows.append((label, a, b, ca, cb, du(work / "ours"), du(work / "restic")))
        print(f"\n{'run':<16} {'vault s':>8} {'restic s':>9} {'ratio':>6} {'CPU s':>6} {'restic CPU':>11} "
              f"{'CPU ratio':>10} {'vault MiB':>10} {'restic MiB':>11}")
        for label, a, b, ca, cb, sa, sb in rows:
            print(f"{label:<16} {a:8.2f} {b:9.2f} {a / b:6.2f} {ca:6.2f} {cb:11.2f} {ca / cb:10.2f} "
                  f"{sa / MIB:10.1f} {sb / MIB:11.1f}")
        print("\n" + load_line())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
