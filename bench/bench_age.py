"""Benchmark: the vault's age implementation against the age CLI on one large random file.

Run ``python bench/bench_age.py [--size-mib 1024] [--runs 3] [--dir /tmp]``. Every measured
operation is a separate process, so wall time, CPU time and peak RSS are per process for both
tools. Not a test: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOOL = HERE / "vault_tool.py"
MIB = 1024 * 1024


@dataclass
class Sample:
    seconds: float  # wall clock, process start to exit
    cpu: float  # user + system seconds of the process
    rss_mib: float  # peak resident set size


TIME = shutil.which("time", path="/usr/bin:/bin")


def run(argv: list[str]) -> Sample:
    """Run argv to completion and measure that one process."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if TIME:
        # ru_maxrss survives exec, so a child forked from this (large) Python process would report
        # at least our size; GNU time forks from a tiny process and reports the command's own peak.
        with tempfile.NamedTemporaryFile("r") as report:
            subprocess.run([TIME, "-f", "%e %U %S %M", "-o", report.name, *argv], env=env, check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            wall, user, system, rss_kib = report.read().split()[-4:]
        return Sample(float(wall), float(user) + float(system), int(rss_kib) / 1024)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    # Without GNU time the peak RSS may include this process's own, inherited across fork + exec.
    return Sample(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)  # ru_maxrss is KiB


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MIB):
            h.update(block)
    return h.hexdigest()


def make_input(path: Path, size_mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MIB))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the random input (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement, best kept (default 3)")
    parser.add_argument("--dir", default=None, help="parent of the temporary directory (default /tmp)")
    parser.add_argument("--no-payload", action="store_true", help="skip the payload-layer-only rows")
    opts = parser.parse_args()
    for exe in ("age", "age-keygen"):
        if not shutil.which(exe):
            raise SystemExit(f"{exe} not found on PATH")
    py = sys.executable

    with tempfile.TemporaryDirectory(prefix="vault-bench-", dir=opts.dir) as tmp:
        d = Path(tmp)
        plain, key = d / "plain", d / "key.txt"
        print(f"input: {opts.size_mib} MiB of random bytes in {d}", flush=True)
        make_input(plain, opts.size_mib)
        subprocess.run(["age-keygen", "-o", str(key)], check=True, stderr=subprocess.DEVNULL)
        recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
        recipient = recipient.stdout.strip()
        want = sha256(plain)

        # Correctness gate before any timing: each tool decrypts the other's output.
        print("checking: vault -> age -d, age -> vault decrypt, payload round trip", flush=True)
        run([py, str(TOOL), "encrypt", recipient, str(plain), str(d / "v.age")])
        run(["age", "-d", "-i", str(key), "-o", str(d / "v.out"), str(d / "v.age")])
        run(["age", "-r", recipient, "-o", str(d / "a.age"), str(plain)])
        run([py, str(TOOL), "decrypt", str(key), str(d / "a.age"), str(d / "a.out")])
        run([py, str(TOOL), "payload-encrypt", str(plain), str(d / "p.age")])
        run([py, str(TOOL), "payload-decrypt", str(d / "p.age"), str(d / "p.out")])
        for out in ("v.out", "a.out", "p.out"):
            if sha256(d / out) != want:
                raise SystemExit(f"MISMATCH: {out} differs from the input")
            (d / out).unlink()
        print("checking: ok", flush=True)

        enc_out, dec_out = str(d / "t.age"), str(d / "t.out")
        cases = {
            ("age", "encrypt"): ["age", "-r", recipient, "-o", enc_out, str(plain)],
            ("age", "decrypt"): ["age", "-d", "-i", str(key), "-o", dec_out, str(d / "a.age")],
            ("vault", "encrypt"): [py, str(TOOL), "encrypt", recipient, str(plain), enc_out],
            ("vault", "decrypt"): [py, str(TOOL), "decrypt", str(key), str(d / "a.age"), dec_out],
        }
        if not opts.no_payload:
            cases[("vault payload", "encrypt")] = [py, str(TOOL), "payload-encrypt", str(plain), enc_out]
            sealed = str(d / "p.age")
            cases[("vault payload", "decrypt")] = [py, str(TOOL), "payload-decrypt", sealed, dec_out]

        best: dict[tuple[str, str], Sample] = {}
        for i in range(opts.runs):
            # Interleaved, so that noise from other load falls on every tool alike.
            for case, argv in cases.items():
                for stale in (enc_out, dec_out):
                    Path(stale).unlink(missing_ok=True)
                os.sync()  # do not bill one run for the write-back of the previous one
                s = run(argv)
                b = best.get(case)
                best[case] = Sample(
                    min(s.seconds, b.seconds) if b else s.seconds,
                    min(s.cpu, b.cpu) if b else s.cpu,
                    max(s.rss_mib, b.rss_mib) if b else s.rss_mib,
                )
            print(f"run {i + 1}/{opts.runs} done", flush=True)

    gib = opts.size_mib / 1024
    print()
    columns = ("seconds", "GiB/s", "CPU s", "peak RSS MiB", "vs age")
    print(f"{'tool':<14} {'operation':<9} " + " ".join(f"{c:>{max(len(c), 6)}}" for c in columns))
    for (tool, op), s in best.items():
        ratio = "" if tool == "age" else f"{s.seconds / best[('age', op)].seconds:.2f}"
        figures = f"{s.seconds:7.2f} {gib / s.seconds:6.2f} {s.cpu:6.2f} {s.rss_mib:12.1f} {ratio:>6}"
        print(f"{tool:<14} {op:<9} {figures}")
    load = os.getloadavg()[0]
    print(f"\nbest of {opts.runs} runs (wall and CPU each minimal over runs; RSS the maximum);")
    print("'vs age' = our seconds / age's seconds, 1.00 or less is the target;")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (other load makes the figures noisy)")


if __name__ == "__main__":
    main()
