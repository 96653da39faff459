"""Benchmark: how long a command takes to start — ``vault --help``, ``vault doc view`` of a small
document and ``vault dossier list``, each through the command runner with the agent, with the agent
alone and with the passphrase — against ``age -d`` of a small file, in the same run.

Run ``python bench/bench_startup.py [--runs 21]``. Every measured command is a process of its own,
timed from spawn to exit; the runs of all commands are interleaved so that load changes hit them
alike, and the table gives the median and the best. Peak RSS comes from one extra run per command
under GNU time. Not a test: nothing here asserts on timing.

Through the runner the command runs in a child of the runner, not of this benchmark: its CPU time and
memory are not the measured process's, so those rows give the client's own CPU and peak RSS (marked
``*``) and only their wall time compares with the other rows.
"""

from __future__ import annotations

import argparse
import re
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import compile_like_installed, require  # same directory

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PASSPHRASE = "bench"  # protects a throwaway identity in a temporary directory
# Bench seam, as in bench_vault.py: the identity file's scrypt cost. At age's 2**18 the KDF alone
# takes ~0.5 s on this kind of machine and is the whole "without agent" figure; the agent's point is
# to pay it once. Run with --work-factor 18 to see that.
BENCH_WORK_FACTOR = 10
TIME = shutil.which("time", path="/usr/bin:/bin")
CONTENT = b"A small document: the first page of a service record.\n" * 20


def vault_cmd() -> list[str]:
    script = Path(sys.executable).parent / "vault"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vault"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall seconds, CPU seconds (user + system, which other load inflates far less) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, proc.stdout


def peak_rss_mib(argv: list[str], env: dict[str, str]) -> float | None:
    if not TIME:
        return None
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run([TIME, "-f", "%M", "-o", report.name, *argv], env=env, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        return int(report.read().split()[-1]) / 1024


def setup(d: Path, work_factor: int) -> tuple[dict[str, str], str]:
    """A vault founded by one member with one small document; returns the env and the document number."""
    from vault.store import identity

    identity.SCRYPT_WORK_FACTOR = work_factor
    ident_file, pass_file = d / "bench.key", d / "pass"
    pass_file.write_text(PASSPHRASE + "\n")
    ident = identity.MemberIdentity.generate()
    identity.save_identity(ident_file, ident, PASSPHRASE)
    run_dir = d / "run"
    run_dir.mkdir(mode=0o700)
    env = dict(os.environ, PYTHONPATH=str(REPO), VAULT_DIR=str(d / "vault"), VAULT_IDENTITY=str(ident_file),
               VAULT_PASSPHRASE_FILE=str(pass_file), XDG_RUNTIME_DIR=str(run_dir),
               VAULT_LANG="en")  # the agent's start line is parsed below
    env.pop("VAULT_AGENT_SOCK", None)
    v = vault_cmd()
    subprocess.run([*v, "init", str(d / "vault"), "--supervisor", "bench", "--key", ident.public.line()],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    number = subprocess.run([*v, "dossier", "create", "--type", "enterprise", "--business", "network-services",
                             "--dept", "sales", "--name", "Bench Ltd"], env=env, check=True,
                            capture_output=True, text=True).stdout.strip()
    (d / "doc.txt").write_bytes(CONTENT)
    doc = subprocess.run([*v, "doc", "add", number, str(d / "doc.txt"), "--category", "contract", "--source", "bench",
                          "--date", "2026-03-01", "--original"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    return env, doc


def wait_for_runner(v: list[str], env: dict[str, str], seconds: float = 60) -> None:
    """Until the agent's command runner answers (it loads the command line after `agent start` returns)."""
    import json

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        st = subprocess.run([*v, "agent", "status", "--json"], env=env, capture_output=True, text=True)
        if st.returncode == 0 and (json.loads(st.stdout).get("runner") or {}).get("current"):
            return
        time.sleep(0.2)
    raise SystemExit("the agent's command runner did not come up")


def main() -> None:
    compile_like_installed()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--work-factor", type=int, default=BENCH_WORK_FACTOR)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout of the project (e.g. `git archive main`): its --help and doc view "
                         "are timed in the same runs, for a before/after that load cannot skew")
    opts = ap.parse_args()
    if opts.baseline:
        compile_like_installed(opts.baseline)
    require("age", "age-keygen", hint="apt install age")
    d = Path(tempfile.mkdtemp(prefix="vb-", dir="/tmp"))  # short: the agent's socket path
    agent_pid = None
    try:
        env, doc = setup(d, opts.work_factor)
        (d / "no-agent").mkdir(mode=0o700)
        no_agent = dict(env, XDG_RUNTIME_DIR=str(d / "no-agent"))  # finds no agent: unlocks with the passphrase
        agent = {k: v for k, v in env.items() if k != "VAULT_PASSPHRASE_FILE"}
        subprocess.run(["age-keygen", "-o", str(d / "age.key")], check=True, capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", str(d / "age.key")], check=True, capture_output=True,
                                   text=True).stdout.strip()
        subprocess.run(["age", "-r", recipient, "-o", str(d / "doc.age"), str(d / "doc.txt")], check=True)
        v = vault_cmd()
        out = subprocess.run([*v, "agent", "start"], env=env, check=True, capture_output=True, text=True).stdout
        agent_pid = int(re.search(r"pid (\d+)", out).group(1))  # echo 'Agent pid N';
        wait_for_runner(v, agent)
        agent_only = dict(agent, VAULT_RUNNER="0")
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], env),
            ("vault --help, runner*", [*v, "--help"], agent),
            ("vault --help", [*v, "--help"], agent_only),
            ("vault doc view, runner+agent*", [*v, "doc", "view", doc], agent),
            ("vault doc view, agent", [*v, "doc", "view", doc], agent_only),
            ("vault doc view, passphrase", [*v, "doc", "view", doc], no_agent),
            ("vault dossier list, runner+agent*", [*v, "dossier", "list"], agent),
            ("vault dossier list, agent", [*v, "dossier", "list"], agent_only),
            ("vault dossier list, passphrase", [*v, "dossier", "list"], no_agent),
            ("age -d", ["age", "-d", "-i", str(d / "age.key"), str(d / "doc.age")], env),
        ]
        if opts.baseline:
            # PYTHONSAFEPATH: `python -m` must not find this checkout through the working directory.
            base = dict(no_agent, PYTHONPATH=str(opts.baseline.resolve()), PYTHONSAFEPATH="1")
            cases += [("baseline: vault --help", [sys.executable, "-m", "vault", "--help"], base),
                      ("baseline: doc view, passphrase", [sys.executable, "-m", "vault", "doc", "view", doc], base),
                      ("baseline: dossier list", [sys.executable, "-m", "vault", "dossier", "list"], base)]
        for name, argv, e in cases:  # check and warm the page cache before timing anything
            _, _, stdout = timed(argv, e)
            if name.startswith(("vault doc view", "age -d")) and stdout != CONTENT:
                raise SystemExit(f"{name}: wrong output")
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(opts.runs):
            for name, argv, e in cases:
                wall, used, _ = timed(argv, e)
                times[name].append(wall)
                cpu[name].append(used)
        load_after = os.getloadavg()
        rss = {name: peak_rss_mib(argv, e) for name, argv, e in cases}
    finally:
        if agent_pid:
            os.kill(agent_pid, 15)
        shutil.rmtree(d, ignore_errors=True)
    age_median = statistics.median(times["age -d"])
    print(f"{'command':<36} {'median ms':>10} {'best ms':>8} {'CPU ms':>7} {'peak MiB':>9} {'vs age -d':>10}")
    for name, ts in times.items():
        med = statistics.median(ts)
        r = rss[name]
        print(f"{name:<36} {med * 1000:>10.1f} {min(ts) * 1000:>8.1f} {statistics.median(cpu[name]) * 1000:>7.1f} "
              f"{(f'{r:.0f}' if r else '-'):>9} {med / age_median:>10.1f}")
    print("* through the runner: CPU and peak RSS are the client process's only (the command runs in the runner's child)")
    print(f"{opts.runs} interleaved runs each; identity scrypt work factor 2^{opts.work_factor}; "
          f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")


if __name__ == "__main__":
    main()
