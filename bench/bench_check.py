"""Benchmark: ``vault check`` / ``check --read-data`` against ``restic check`` / ``--read-data`` on the same data.

Run ``python bench/bench_check.py [--docs 10000] [--size-mib 1024] [--per-dossier 10] [--runs 3]``. It
builds a vault of ``--docs`` random documents through the library (bulk adds, ``--per-dossier`` to a
dossier), backs the vault directory up once with ``restic backup`` (not timed), and then times, each
as its own process after ``sync``, interleaved ``--runs`` times: ``vault check`` (no key: the whole
history replayed and verified, every signed record, every document's ciphertext hash) against
``restic check`` (the repository's structure: index, snapshots, trees), and ``vault check
--read-data`` (with the identity: also every key table, sealed blob and document decrypted) against
``restic check --read-data`` (every pack read and every blob's hash verified). A third row sets
``vault check`` against ``restic check --read-data``: with no key the vault still reads and hashes
every document, which restic does only with ``--read-data``. ``--baseline DIR`` (another checkout)
adds its ``vault check`` / ``--read-data`` to the same interleaved runs. Each vault run is a
fresh client (its own empty state directory), so it replays the history from the genesis record.
Prints best and median seconds, the ratio of medians and the load. Not a test: nothing asserts on
timing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import restic_archive, restic_args, timed  # same directory

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
MIB = 1024 * 1024
PASSPHRASE = "bench passphrase"


def main() -> None:
    def more(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--runs", type=int, default=3)
        ap.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. git archive main | tar -x -C DIR): its vault check runs in the "
                             "same interleaved runs, on the same vault")

    args = restic_args(__doc__, more)
    if args.baseline:
        for pkg in ("vault", "plugins"):
            compileall.compile_dir(str(args.baseline / pkg), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="bench-check-", dir=args.dir))
    try:
        (vault_dir, _, _, ident_file), env = restic_archive(args, work, PASSPHRASE)
        (work / "pass").write_text(PASSPHRASE + "\n")
        env.update(VAULT_DIR=str(vault_dir), VAULT_IDENTITY=str(ident_file), VAULT_PASSPHRASE_FILE=str(work / "pass"),
                   VAULT_AGENT_SOCK=str(work / "no-agent.sock"))
        subprocess.run(["restic", "backup", "--quiet", str(vault_dir)], env=env, check=True, stdout=subprocess.DEVNULL)
        vault = [sys.executable, "-m", "vault"]
        cases = {
            "check": ([*vault, "check"], ["restic", "check"]),
            "check --read-data": ([*vault, "check", "--read-data"], ["restic", "check", "--read-data"]),
        }
        base_env = dict(env, PYTHONPATH=str(args.baseline.resolve()), PYTHONSAFEPATH="1") if args.baseline else None
        times: dict[tuple[str, str], list[float]] = {}
        loads = [os.getloadavg()[0]]
        for i in range(args.runs):
            for label, (ours, theirs) in cases.items():
                # A fresh client each run: nothing remembered, the whole history replayed.
                state = work / f"state-{i}-{label.replace(' ', '')}"
                times.setdefault((label, "vault"), []).append(timed(ours, dict(env, VAULT_STATE_DIR=str(state)), sync=True))
                times.setdefault((label, "restic"), []).append(timed(theirs, env, sync=True))
                if base_env is not None:
                    times.setdefault((label, "baseline"), []).append(
                        timed(ours, dict(base_env, VAULT_STATE_DIR=str(state) + "-baseline"), sync=True))
            print(f"run {i + 1}/{args.runs} done", flush=True)
        loads.append(os.getloadavg()[0])
        print(f"\n{args.docs} documents ({args.size_mib} MiB, {args.per_dossier} per dossier); "
              f"{args.runs} interleaved runs, each a process after sync")
        print(f"{'command':<20} {'vault best':>10} {'median':>8} {'restic best':>11} {'median':>8} {'ratio':>6}")
        rows = [(label, label, label) for label in cases]
        # `vault check` with no key still reads and hashes every document (what restic does only
        # with --read-data): the row that compares the same work.
        rows.append(("check / --read-data", "check", "check --read-data"))
        for label, ours_case, theirs_case in rows:
            a, b = times[(ours_case, "vault")], times[(theirs_case, "restic")]
            print(f"{label:<20} {min(a):10.2f} {statistics.median(a):8.2f} {min(b):11.2f} {statistics.median(b):8.2f} "
                  f"{statistics.median(a) / statistics.median(b):6.2f}")
        if base_env is not None:  # the other checkout against restic, in the same runs
            for label, case in (("baseline check", "check"), ("baseline --read-data", "check --read-data")):
                a, b = times[(case, "baseline")], times[(case, "restic")]
                print(f"{label:<20} {min(a):10.2f} {statistics.median(a):8.2f} {min(b):11.2f} {statistics.median(b):8.2f} "
                      f"{statistics.median(a) / statistics.median(b):6.2f}")
        print(f"\nload average {loads[0]:.2f} before the timed runs, {loads[1]:.2f} after; {os.cpu_count()} CPUs; "
              f"restic {subprocess.run(['restic', 'version'], capture_output=True, text=True).stdout.split()[1]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
