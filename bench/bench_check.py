"""Benchmark: ``vault check`` / ``check --read-data`` against ``restic check`` / ``--read-data`` on the same data.

Run ``python bench/bench_check.py [--docs 10000] [--size-mib 1024] [--per-dossier 10] [--runs 3]``. It
builds a vault of ``--docs`` random documents through the library (bulk adds, ``--per-dossier`` to a
dossier), backs the vault directory up once with ``restic backup`` (not timed), and then times, each
as its own process after ``sync``, interleaved ``--runs`` times: ``vault check`` (no key: the whole
history replayed and verified, every signed record, every document's ciphertext hash) against
``restic check`` (the repository's structure: index, snapshots, trees), and ``vault check
--read-data`` (with the identity: also every key table, sealed blob and document decrypted) against
``restic check --read-data`` (every pack read and every blob's hash verified). A third row sets
``vault check`` of a new client against ``restic check --read-data``: with no key the vault still
verifies every document's hash, which restic does only with ``--read-data``. ``vault check`` runs
twice: as a new client (its own empty state directory each run: the history replayed from the
genesis record, every file read) and as a warm client (one state directory that checked once
before the timed runs: what it verified and whose file status is unchanged is not read again).
``--baseline DIR`` (another checkout) adds its runs of each case to the same interleaved runs.
``--keep DIR`` builds the archive (and backs it up) in DIR and leaves it there; a later run with the
same DIR times that archive again without building it (``--warm-only``: only the warm client's rows,
for a quick repeat when the machine is quiet). ``--runner`` starts the identity agent and its command runner (``vault agent start``) and adds the
warm client's ``vault check`` through the runner, which has the command line imported already: its
CPU time is spent in the runner's child and not counted (wall time only).
Prints best and median wall seconds, median CPU seconds (user + system), the ratios of medians and
the load. Not a test: nothing asserts on timing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import restic_archive, restic_args, restic_env, timed_cpu  # same directory
from bench_startup import wait_for_runner

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
MIB = 1024 * 1024
PASSPHRASE = "bench passphrase"


def main() -> None:
    def more(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--runs", type=int, default=3)
        ap.add_argument("--keep", type=Path, default=None, help="build the archive in DIR and keep it (reused if there)")
        ap.add_argument("--warm-only", action="store_true", help="only the warm client's rows")
        ap.add_argument("--runner", action="store_true", help="also the warm check through the agent's command runner")
        ap.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. git archive main | tar -x -C DIR): its vault check runs in the "
                             "same interleaved runs, on the same vault")

    args = restic_args(__doc__, more)
    if args.baseline:
        for pkg in ("vault", "plugins"):
            compileall.compile_dir(str(args.baseline / pkg), quiet=1)
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-check-", dir=args.dir))
    run_dir = Path(tempfile.mkdtemp(prefix="vbc-", dir="/tmp"))  # short: the agent's socket path
    agent_pid = None
    try:
        if args.keep and (work / "restic").is_dir():  # built by an earlier run with --keep
            vault_dir, ident_file, env = work / "vault", work / "alice.key", restic_env(work, PASSPHRASE)
            print(f"reusing the archive in {work}", flush=True)
        else:
            work.mkdir(parents=True, exist_ok=True)
            (vault_dir, _, _, ident_file), env = restic_archive(args, work, PASSPHRASE)
            subprocess.run(["restic", "backup", "--quiet", str(vault_dir)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        (work / "pass").write_text(PASSPHRASE + "\n")
        env.update(VAULT_DIR=str(vault_dir), VAULT_IDENTITY=str(ident_file), VAULT_PASSPHRASE_FILE=str(work / "pass"),
                   VAULT_AGENT_SOCK=str(work / "no-agent.sock"))
        vault = [sys.executable, "-m", "vault"]
        # (label, vault argv, state: "new" = an empty client state each run, "warm" = one client that
        # checked once before the timed runs; restic argv)
        cases = {
            "check, new client": ([*vault, "check"], "new", ["restic", "check"]),
            "check, warm client": ([*vault, "check"], "warm", ["restic", "check"]),
            "check --read-data": ([*vault, "check", "--read-data"], "new", ["restic", "check", "--read-data"]),
        }
        if args.warm_only:
            cases = {k: c for k, c in cases.items() if c[1] == "warm"}
        warm = work / "state-warm"
        shutil.rmtree(warm, ignore_errors=True)  # (a kept archive's: this run's first check warms it)
        shutil.rmtree(str(warm) + "-baseline", ignore_errors=True)
        if args.runner:
            agent_env = {k: x for k, x in env.items() if k != "VAULT_AGENT_SOCK"}
            agent_env.update(XDG_RUNTIME_DIR=str(run_dir), VAULT_LANG="en")
            out = subprocess.run([*vault, "agent", "start"], env=agent_env, check=True, capture_output=True,
                                 text=True).stdout
            agent_pid = int(re.search(r"pid (\d+)", out).group(1))  # echo 'Agent pid N';
            wait_for_runner(vault, agent_env)
            cases["check, warm client, runner*"] = ([*vault, "check"], "warm-runner", ["restic", "check"])
        timed_cpu([*vault, "check"], dict(env, VAULT_STATE_DIR=str(warm)))  # the warm client's first check
        if args.baseline:
            timed_cpu([*vault, "check"], dict(env, PYTHONPATH=str(args.baseline.resolve()), PYTHONSAFEPATH="1",
                                              VAULT_STATE_DIR=str(warm) + "-baseline"))
        base_env = dict(env, PYTHONPATH=str(args.baseline.resolve()), PYTHONSAFEPATH="1") if args.baseline else None
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        loads = [os.getloadavg()[0]]
        for i in range(args.runs):
            for label, (ours, state_kind, theirs) in cases.items():
                state = warm if state_kind.startswith("warm") else work / f"state-{i}-{label.replace(' ', '')}"
                run_env = dict(agent_env if state_kind == "warm-runner" else env, VAULT_STATE_DIR=str(state))
                times.setdefault((label, "vault"), []).append(timed_cpu(ours, run_env))
                if (theirs_key := (" ".join(theirs), "restic")) not in times or len(times[theirs_key]) <= i:
                    times.setdefault(theirs_key, []).append(timed_cpu(theirs, env))
                if base_env is not None and state_kind != "warm-runner":
                    bstate = str(state) + "-baseline"
                    times.setdefault((label, "baseline"), []).append(timed_cpu(ours, dict(base_env, VAULT_STATE_DIR=bstate)))
            print(f"run {i + 1}/{args.runs} done", flush=True)
        loads.append(os.getloadavg()[0])
        print(f"\n{args.docs} documents ({args.size_mib} MiB, {args.per_dossier} per dossier); "
              f"{args.runs} interleaved runs, each a process after sync; wall and CPU (user + system) seconds")
        print(f"{'command':<30} {'vault best':>10} {'median':>7} {'CPU':>6} {'restic best':>11} {'median':>7} {'CPU':>6}"
              f" {'ratio':>6} {'CPU ratio':>9}")
        rows = [(label, "vault", label, " ".join(cases[label][2])) for label in cases]
        # `vault check` with no key still verifies every document's hash (what restic does only with
        # --read-data): the rows that compare the same work.
        if not args.warm_only:
            rows.append(("new client / restic --read-data", "vault", "check, new client", "restic check --read-data"))
        if base_env is not None:  # the other checkout against restic, in the same runs
            rows += [(f"baseline {label}", "baseline", label, " ".join(cases[label][2])) for label in cases
                     if cases[label][1] != "warm-runner"]
        for label, who, ours_case, theirs_case in rows:
            a, b = times[(ours_case, who)], times[(theirs_case, "restic")]
            wa, ca = [x[0] for x in a], [x[1] for x in a]
            wb, cb = [x[0] for x in b], [x[1] for x in b]
            print(f"{label:<30} {min(wa):10.2f} {statistics.median(wa):7.2f} {statistics.median(ca):6.2f} "
                  f"{min(wb):11.2f} {statistics.median(wb):7.2f} {statistics.median(cb):6.2f} "
                  f"{statistics.median(wa) / statistics.median(wb):6.2f} {statistics.median(ca) / statistics.median(cb):9.2f}")
        print(f"\nload average {loads[0]:.2f} before the timed runs, {loads[1]:.2f} after; {os.cpu_count()} CPUs; "
              f"restic {subprocess.run(['restic', 'version'], capture_output=True, text=True).stdout.split()[1]}")
        if args.runner:
            print("* through the runner: the command's CPU time is the runner's child's, not counted here")
    finally:
        if agent_pid:
            os.kill(agent_pid, 15)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:  # (the per-run states of a kept archive: only the archive is kept)
            for st in work.glob("state-*"):
                shutil.rmtree(st, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
