"""Benchmark: what taking the exclusive lock costs a writer, at 10,000 and 100,000 dossiers.

    .venv/bin/python bench/bench_lock.py     # --sizes 10000,100000 --real 10000 --runs 5 --base REF --dir DIR

Every write command takes the vault's exclusive lock, and the lock finishes what an interrupted
command left. Before the staging journal it did so by walking the whole vault: every ``.tmp-``
file anywhere, every ``.pending`` in every dossier directory, every path the history ever deleted.
This builds one vault with ``--real`` dossiers created for real through the library (signed
manifests, history entries), then adds dossier directories beside them (a manifest, a key table
and one document file each: what a walk visits) up to each size, and times, each in a fresh
process with a warm client state and page cache, ``with vault.lock(exclusive=True): pass`` —
with this checkout's code and with ``--base`` (default ``main``, exported with ``git archive``)
on the same vault, runs interleaved. The reference in the same run is ``find VAULT -name '.tmp-*'``,
the cheapest possible walk of the same tree. The added directories are in no history entry: the
old code's loop over every path of the history therefore covers ``--real`` dossiers only, so its
figure is a lower bound. Prints medians and the load average. Not a test: nothing asserts on time.
``bench_lock.py worker VAULT`` is the child side.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def worker(vault_dir: str) -> None:
    from vault.archive import authority
    from vault.archive.vault import Vault

    v = Vault.open(Path(vault_dir))
    authority.state(v)  # the replay is not the lock's cost
    t = time.perf_counter()
    with v.lock(exclusive=True):
        pass
    print(json.dumps({"lock": time.perf_counter() - t}))


def build(d: Path, real: int) -> tuple[Path, dict[str, str]]:
    sys.path.insert(0, str(REPO))
    from bench_vault import PASSPHRASE, setup_vault  # same directory
    from vault import plugins
    from vault.archive import witness
    from vault.archive.vault import Vault
    from vault.office import dossier
    from vault.store import identity

    root, ident_file, env = setup_vault(d, "vault")
    # Setup only: no fsync, one plugin manager, no client checkpoint per dossier.
    fsync = os.fsync
    os.fsync = lambda fd: None
    pm = plugins.get_plugin_manager()
    plugins.get_plugin_manager = lambda **kw: pm
    save, witness.save = witness.save, lambda v, st: None
    actor = Vault.open(root).act_as(identity.load_identity(ident_file, PASSPHRASE))
    t = time.perf_counter()
    for i in range(real):
        dossier.create(actor, customer_type="enterprise", business="network-services", dept="sales",
                       profile={"name": f"Customer {i}"})
    os.fsync, witness.save = fsync, save
    print(f"  {real} dossiers created for real in {time.perf_counter() - t:.0f} s", flush=True)
    return root, env


def grow(root: Path, size: int) -> None:
    """Add dossier directories (manifest, key table, one document) until there are ``size``."""
    have = sum(1 for _ in os.scandir(root / "dossiers"))
    for _ in range(size - have):
        did = secrets.token_hex(16)
        ddir = root / "dossiers" / did
        (ddir / "documents").mkdir(parents=True)
        (ddir / "manifest.toml").write_bytes(b"format = 1\n" + os.urandom(600).hex().encode())
        (ddir / "documents" / f"{secrets.token_hex(16)}.age").write_bytes(os.urandom(2048))
        (root / "keys" / f"{did}.age").write_bytes(os.urandom(300))


def timed_lock(code: Path, root: Path, env: dict[str, str], state: Path) -> float:
    out = subprocess.run([sys.executable, str(HERE / "bench_lock.py"), "worker", str(root)],
                         env=dict(os.environ, **env, PYTHONPATH=str(code), VAULT_STATE_DIR=str(state)),
                         capture_output=True, text=True, cwd=str(code))
    if out.returncode != 0:
        raise SystemExit(f"worker failed with {code}:\n{out.stderr}")
    return json.loads(out.stdout)["lock"]


def timed_find(root: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["find", str(root), "-name", ".tmp-*"], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--real", type=int, default=10000, help="dossiers created for real (default 10000)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base", default="main", help="the git ref to compare with (default main)")
    ap.add_argument("--dir", default=None)
    opts = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="bench-lock-", dir=opts.dir))
    try:
        base = d / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", opts.base], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        (base / "bench" / "bench_lock.py").write_bytes((HERE / "bench_lock.py").read_bytes())  # the same worker
        root, env = build(d, opts.real)
        rows = []
        for size in sorted(int(s) for s in opts.sizes.split(",")):
            grow(root, size)
            cases = {"this checkout": (REPO, d / "state-new"), f"{opts.base}": (base, d / "state-base")}
            for code, state in cases.values():
                timed_lock(code, root, env, state)  # warm: the client state, the page cache
            times: dict[str, list[float]] = {k: [] for k in [*cases, "find -name '.tmp-*'"]}
            for _ in range(opts.runs):
                for name, (code, state) in cases.items():
                    times[name].append(timed_lock(code, root, env, state))
                times["find -name '.tmp-*'"].append(timed_find(root))
            load = os.getloadavg()[0]
            for name, ts in times.items():
                rows.append((size, name, statistics.median(ts), min(ts), load))
            print(f"  {size} dossiers measured (load {load:.1f})", flush=True)
        print(f"\n{'dossiers':>9}  {'code':<20} {'median s':>9} {'best s':>8}  load")
        for size, name, med, best, load in rows:
            print(f"{size:>9,}  {name:<20} {med:>9.4f} {best:>8.4f}  {load:.1f}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
