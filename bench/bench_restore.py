"""Benchmark: ``vault backup restore`` against ``restic restore`` of the same vault, time and peak RSS.

Run ``python bench/bench_restore.py [--size-mib 512] [--small 200] [--runs 3]``. The vault holds one
large document of ``--size-mib`` MiB and ``--small`` documents of 20 KiB; both tools back it up to a
local repository first (not timed), then each restores it ``--runs`` times into a new directory, as a
process of its own after ``sync``, interleaved. Peak RSS per process from GNU time. Not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vault import PASSPHRASE, REPO, TIME, setup_vault, vault_cmd  # noqa: E402

from _common import compile_like_installed  # same directory


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    subprocess.run(["sync"], check=True)
    with tempfile.NamedTemporaryFile("r") as report:
        t = time.perf_counter()
        subprocess.run([TIME, "-f", "%M", "-o", report.name, *argv], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - t
        return seconds, int(report.read().split()[-1]) / 1024


def main() -> None:
    compile_like_installed()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None)
    opts = ap.parse_args()
    if not (TIME and shutil.which("restic")):
        raise SystemExit("needs GNU time and restic (apt install time restic)")
    d = Path(tempfile.mkdtemp(prefix="vault-bench-restore-", dir=opts.dir))
    try:
        from vault.office import documents
        from vault.store import identity
        from vault.archive.vault import Vault

        root, ident_file, env = setup_vault(d, "vault")
        env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(d / "cache"), **env)
        v = vault_cmd()
        number = subprocess.run([*v, "dossier", "create", "--type", "enterprise", "--business", "network-services",
                                 "--dept", "sales", "--name", "Bench Ltd"], env=env, check=True,
                                capture_output=True, text=True).stdout.strip()
        src = d / "src"
        src.mkdir()
        big = src / "big.bin"
        with open(big, "wb") as f:
            for _ in range(opts.size_mib):
                f.write(os.urandom(1 << 20))
        small = []
        for i in range(opts.small):
            small.append(src / f"s{i}.bin")
            small[-1].write_bytes(os.urandom(20 << 10))
        actor = Vault.open(root).act_as(identity.load_identity(ident_file, PASSPHRASE))
        documents.add(actor, number, [big, *small], category="contract", source="bench", date="2026-03-01",
                      original=True)
        shutil.rmtree(src)
        url = f"file://{d / 'target'}"
        subprocess.run([*v, "backup", "run", url], env=env, check=True, stdout=subprocess.DEVNULL)
        renv = dict(env, RESTIC_PASSWORD="bench", RESTIC_REPOSITORY=str(d / "restic"), RESTIC_CACHE_DIR=str(d / "rc"))
        subprocess.run(["restic", "init", "-q"], env=renv, check=True)
        subprocess.run(["restic", "backup", "-q", str(root)], env=renv, check=True)
        load = os.getloadavg()[0]
        ours, theirs = [], []
        for i in range(opts.runs):
            ours.append(measure([*v, "backup", "restore", url, "latest", str(d / f"r{i}")], env))
            theirs.append(measure(["restic", "restore", "latest", "-q", "--target", str(d / f"q{i}")], renv))
            shutil.rmtree(d / f"r{i}")
            shutil.rmtree(d / f"q{i}")
        load = max(load, os.getloadavg()[0])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    vs, rs = statistics.median(s for s, _ in ours), statistics.median(s for s, _ in theirs)
    print(f"restore of a vault with one {opts.size_mib} MiB document and {opts.small} x 20 KiB, median of {opts.runs}")
    print(f"{'tool':<8} {'seconds':>8} {'peak RSS MiB':>13}")
    print(f"{'vault':<8} {vs:>8.2f} {max(r for _, r in ours):>13.1f}")
    print(f"{'restic':<8} {rs:>8.2f} {max(r for _, r in theirs):>13.1f}")
    print(f"vault / restic: {vs / rs:.2f}; load average up to {load:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
