"""Benchmark: bulk document adds, a 1 GiB document and ``vault find`` at two vault sizes, against age.

Run ``python bench/bench_vault.py [--docs 10000] [--size-mib 1024] [--dossiers 10000] [--runs 3]``.
Every measured operation is a process of its own, so wall time and peak RSS are per process for both
tools. Not a test: nothing here asserts on timing. ``bench_vault.py worker …`` is the child side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_age import sha256  # same directory: the scripts run from bench/

from _common import compile_like_installed, require  # same directory

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1024 * 1024
DOC_SIZE = 4096
PASSPHRASE = "bench"  # protects a throwaway identity in a temporary directory
# Bench seam: the identity file's scrypt cost. 2**18 would add ~0.5 s of KDF to every CLI process
# and drown what is measured; the cost is the same for every vault command, so it is lowered.
BENCH_WORK_FACTOR = 10
TIME = shutil.which("time", path="/usr/bin:/bin")
_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[2:]).returncode\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(f'{r.ru_utime} {r.ru_stime} {r.ru_maxrss}')\n"
    "sys.exit(code)\n"
)


@dataclass
class Sample:
    seconds: float  # wall clock, process start to exit
    rss_mib: float  # peak resident set size of that process
    out: str = ""  # its standard output
    cpu_s: float = 0.0  # user + system CPU seconds of that process (its threads included)


def run(argv: list[str], env: dict[str, str] | None = None) -> Sample:
    """Run argv to completion and measure that one process (as bench_age.py does)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    # ru_maxrss survives exec, so a child forked from this (large) Python process would report at
    # least our size. GNU time forks from a tiny process and reports the command's own peak; without
    # it a fresh small Python process runs the command and reports its RUSAGE_CHILDREN peak.
    wrapper = [TIME, "-f", "%U %S %M", "-o"] if TIME else [sys.executable, "-c", _RUSAGE_WRAPPER]
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        proc = subprocess.run([*wrapper, report.name, *argv], env=env, text=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        user, system, rss_kib = report.read().split()[-3:] if proc.returncode == 0 else ("0", "0", "0")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
    return Sample(seconds, int(rss_kib) / 1024, proc.stdout, float(user) + float(system))


def vault_cmd() -> list[str]:
    script = Path(sys.executable).parent / "vault"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vault"]


def worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "worker", *args]


# -- the child side: library work in a fresh process ------------------------------------------------

def _actor(vault_dir: str, ident_file: str):
    from vault.store import identity
    from vault.archive.vault import Vault

    ident = identity.load_identity(Path(ident_file), identity.passphrase_from_env())
    return Vault.open(Path(vault_dir)).act_as(ident)


def _make_dossiers(actor, count: int, start: int) -> list[str]:
    from vault.office import dossier

    return [dossier.create(actor, customer_type="enterprise", business="network-services", dept="sales",
                           profile={"name": f"Bench Customer {i:06d}", "contact": [f"c{i:06d}@bench.example"]})
            for i in range(start, start + count)]


def worker(op: str, args: list[str]) -> None:
    """One measured (or setup) job; prints its result as JSON on standard output."""
    from vault.office import documents

    if op == "add-docs":  # VAULT ID SRC DOSSIERS BATCH
        vault_dir, ident_file, src, n_dossiers, batch = args[0], args[1], Path(args[2]), int(args[3]), int(args[4])
        actor = _actor(vault_dir, ident_file)
        if os.environ.get("BENCH_FSYNC_EACH"):  # the comparison row: no syncfs, an fsync per file
            from vault.store import syncing

            syncing._SYNCFS[:] = [None]
        t0 = time.perf_counter()
        numbers = _make_dossiers(actor, n_dossiers, 0)
        t1 = time.perf_counter()
        files = sorted(src.iterdir())
        per = -(-len(files) // n_dossiers)
        if os.environ.get("BENCH_BULK"):  # add_many: BATCH files per call, spread over the dossiers
            flat = [(no, f) for k, no in enumerate(numbers) for f in files[k * per : (k + 1) * per]]
            for j in range(0, len(flat), batch):
                groups: dict[str, list[Path]] = {}
                for no, f in flat[j : j + batch]:
                    groups.setdefault(no, []).append(f)
                documents.add_many(actor, list(groups.items()), category="other", source="bench",
                                   date="2026-01-01", original=True)
        else:
            for k, no in enumerate(numbers):
                mine = files[k * per : (k + 1) * per]
                for j in range(0, len(mine), batch):
                    documents.add(actor, no, mine[j : j + batch], category="other", source="bench",
                                  date="2026-01-01", original=True)
        t2 = time.perf_counter()
        print(json.dumps({"dossiers_s": t1 - t0, "add_s": t2 - t1, "docs": len(files)}))
    elif op == "syncfs-floor":  # SRC DEST — the platform's floor: copy the files, then one syncfs
        from vault.store import syncing

        src, dest = Path(args[0]), Path(args[1])
        files = sorted(src.iterdir())
        datas = [f.read_bytes() for f in files]
        t0 = time.perf_counter()
        dest.mkdir()
        written = []
        for f, data in zip(files, datas):
            p = dest / f.name
            with open(p, "wb") as out:
                out.write(data)
            written.append(p)
        syncing.sync_files(written)
        print(json.dumps({"s": time.perf_counter() - t0, "docs": len(files)}))
    elif op == "build":  # VAULT ID COUNT START   (setup only, never timed)
        # A throwaway vault: skip fsync, and reuse one plugin manager instead of scanning the
        # installed distributions' entry points for every dossier. Lookups run in another process.
        from vault import plugins

        os.fsync = lambda fd: None
        pm = plugins.get_plugin_manager()
        plugins.get_plugin_manager = lambda **kw: pm
        _make_dossiers(_actor(args[0], args[1]), int(args[2]), int(args[3]))
        print("{}")
    elif op == "find":  # VAULT ID NAME REPEATS
        from vault.office import find as finder

        actor = _actor(args[0], args[1])
        finder.find(actor, name=args[2])  # warm: ring unlocked, index built, files in the page cache
        times, found = [], []
        for _ in range(int(args[3])):
            t = time.perf_counter()
            found = finder.find(actor, name=args[2])["rows"]
            times.append(time.perf_counter() - t)
        print(json.dumps({"best": min(times), "median": statistics.median(times), "found": len(found)}))
    else:
        raise SystemExit(f"unknown worker op {op}")


# -- the parent side ---------------------------------------------------------------------------------

def setup_vault(d: Path, name: str) -> tuple[Path, Path, dict[str, str]]:
    """A new vault with one supervisor (also in the archive ring); returns it, the identity, the env."""
    from vault.store import identity
    from vault.archive.vault import Vault

    identity.SCRYPT_WORK_FACTOR = BENCH_WORK_FACTOR
    ident_file, pass_file = d / "bench.key", d / "pass"
    if not ident_file.exists():
        pass_file.write_text(PASSPHRASE + "\n")
        identity.save_identity(ident_file, identity.MemberIdentity.generate(), PASSPHRASE)
    ident = identity.load_identity(ident_file, PASSPHRASE)
    root = d / name
    Vault.init(root, supervisor="bench", key=ident.public)
    env = {"VAULT_DIR": str(root), "VAULT_IDENTITY": str(ident_file), "VAULT_PASSPHRASE_FILE": str(pass_file)}
    return root, ident_file, env


def bench_docs(d: Path, opts, recipient: str, rows: list, ratios: list) -> None:
    src = d / "docs-src"
    src.mkdir()
    for i in range(opts.docs):
        (src / f"{i:06d}.bin").write_bytes(os.urandom(DOC_SIZE))
    root, ident_file, env = setup_vault(d, "docs-vault")
    n_dossiers = min(opts.docs_dossiers, opts.docs)
    print(f"adding {opts.docs} documents of 4 KiB to {n_dossiers} dossiers, {opts.batch} per call", flush=True)
    os.sync()
    s = run(worker_cmd("add-docs", str(root), str(ident_file), str(src), str(n_dossiers), str(opts.batch)), env)
    res = json.loads(s.out)
    per_call_rate = res["docs"] / res["add_s"]
    rows.append((f"add {opts.docs} x 4 KiB, {opts.batch} per add", "vault", res["add_s"], f"{per_call_rate:,.0f} docs/s",
                 s.rss_mib))
    # The bulk path: add_many, --bulk files per call over as many dossiers as they fall in.
    root3, _, _ = setup_vault(d, "docs-vault-bulk")
    os.sync()
    s3 = run(worker_cmd("add-docs", str(root3), str(ident_file), str(src), str(n_dossiers), str(opts.bulk)),
             dict(env, VAULT_DIR=str(root3), BENCH_BULK="1"))
    res3 = json.loads(s3.out)
    vault_rate = res3["docs"] / res3["add_s"]
    rows.append((f"add {opts.docs} x 4 KiB, add_many {opts.bulk} per call", "vault", res3["add_s"],
                 f"{vault_rate:,.0f} docs/s", s3.rss_mib))
    os.sync()
    s4 = run(worker_cmd("syncfs-floor", str(src), str(d / "floor")))
    res4 = json.loads(s4.out)
    floor_rate = res4["docs"] / res4["s"]
    rows.append((f"write {opts.docs} x 4 KiB plain + one syncfs", "os", res4["s"], f"{floor_rate:,.0f} files/s",
                 s4.rss_mib))
    shutil.rmtree(d / "floor")
    # The same adds with an fsync per file and directory instead of one syncfs per batch.
    root2, _, _ = setup_vault(d, "docs-vault-fsync")
    os.sync()
    s2 = run(worker_cmd("add-docs", str(root2), str(ident_file), str(src), str(n_dossiers), str(opts.batch)),
             dict(env, VAULT_DIR=str(root2), BENCH_FSYNC_EACH="1"))
    res2 = json.loads(s2.out)
    rows.append((f"add {opts.docs} x 4 KiB, fsync per file", "vault", res2["add_s"],
                 f"{res2['docs'] / res2['add_s']:,.0f} docs/s", s2.rss_mib))
    print(f"encrypting the same {opts.docs} files one by one with age -r", flush=True)
    out = d / "age-docs"
    out.mkdir()
    files = sorted(src.iterdir())
    os.sync()
    rss = max(run(["age", "-r", recipient, "-o", str(out / f"{f.name}.age"), str(f)]).rss_mib for f in files[:5])
    start = time.perf_counter()
    for f in files[5:]:
        subprocess.run(["age", "-r", recipient, "-o", str(out / f"{f.name}.age"), str(f)], check=True)
    age_s = (time.perf_counter() - start) * len(files) / max(1, len(files) - 5)
    age_rate = len(files) / age_s
    rows.append((f"encrypt {opts.docs} x 4 KiB, age -r each", "age", age_s, f"{age_rate:,.0f} files/s", rss))
    ratios.append(("bulk add: vault docs/s / age files/s", vault_rate / age_rate, "(higher is better)"))
    ratios.append(("bulk add: vault docs/s / plain write + syncfs", vault_rate / floor_rate, "(the platform's floor)"))
    shutil.rmtree(out)
    shutil.rmtree(src)


def bench_big(d: Path, opts, key: Path, recipient: str, rows: list, ratios: list) -> None:
    root, ident_file, env = setup_vault(d, "big-vault")
    plain = d / "big"
    print(f"input: {opts.size_mib} MiB of random bytes", flush=True)
    with open(plain, "wb") as f:
        for _ in range(opts.size_mib):
            f.write(os.urandom(MIB))
    want = sha256(plain)
    v = vault_cmd()
    no = json.loads(run([*v, "dossier", "create", "--type", "individual", "--business", "bench", "--dept", "sales",
                         "--name", "Big File Customer", "--json"], env).out)["number"]
    add = [*v, "doc", "add", no, str(plain), "--category", "other", "--source", "bench", "--date", "2026-01-01",
           "--original", "--json"]
    out_v, out_a, enc_a = d / "big.view", d / "big.out", d / "big.age"
    # Correctness gate before timing: the vault gives back the same bytes, and so does age.
    docno = json.loads(run(add, env).out)["numbers"][0]
    run([*v, "doc", "view", docno, "--output", str(out_v)], env)
    run(["age", "-r", recipient, "-o", str(enc_a), str(plain)])
    run(["age", "-d", "-i", str(key), "-o", str(out_a), str(enc_a)])
    for out in (out_v, out_a):
        if sha256(out) != want:
            raise SystemExit(f"MISMATCH: {out.name} differs from the input")
    print("checking: vault doc view and age -d give back the input", flush=True)
    cases = {
        ("add", "vault"): lambda: run(add, env),
        ("add", "age"): lambda: run(["age", "-e", "-r", recipient, "-o", str(enc_a), str(plain)]),
        # The fair durable yardstick: age leaves its output in the page cache, the vault does not.
        ("add", "age+fsync"): lambda: run(["sh", "-c", 'age -e -r "$1" -o "$2" "$3" && sync "$2"', "sh",
                                           recipient, str(enc_a), str(plain)]),
        ("view", "vault"): lambda: run([*v, "doc", "view", docno, "--output", str(out_v)], env),
        ("view", "age"): lambda: run(["age", "-d", "-i", str(key), "-o", str(out_a), str(enc_a)]),
    }
    if opts.baseline:  # another checkout's add in the same runs: a before/after that load cannot skew
        base_env = dict(env, PYTHONPATH=str(opts.baseline.resolve()), PYTHONSAFEPATH="1")
        cases[("add", "baseline")] = lambda: run([sys.executable, "-m", "vault", *add[len(v):]], base_env)
    if opts.add_only:
        cases = {c: fn for c, fn in cases.items() if c[0] == "add"}
    best: dict[tuple[str, str], Sample] = {}
    samples: dict[tuple[str, str], list[Sample]] = {}
    for i in range(opts.runs):
        for case, fn in cases.items():  # interleaved, so other load falls on both tools alike
            for stale in (out_v, out_a) if case[0] == "view" else (enc_a,) if case[1].startswith("age") else ():
                stale.unlink(missing_ok=True)
            os.sync()  # do not bill one run for the write-back of the previous one
            s = fn()
            samples.setdefault(case, []).append(s)
            b = best.get(case)
            best[case] = Sample(min(s.seconds, b.seconds) if b else s.seconds, max(s.rss_mib, b.rss_mib if b else 0))
        print(f"1 GiB run {i + 1}/{opts.runs} done", flush=True)
    gib = opts.size_mib / 1024
    labels = {("add", "vault"): "vault doc add", ("add", "age"): "age -e", ("add", "age+fsync"): "age -e; sync FILE",
              ("add", "baseline"): "baseline vault doc add", ("view", "vault"): "vault doc view --output",
              ("view", "age"): "age -d"}
    for (op, tool), s in best.items():
        rows.append((f"{op} {opts.size_mib} MiB: {labels[(op, tool)]}", tool.split("+")[0], s.seconds,
                     f"{gib / s.seconds:.2f} GiB/s", s.rss_mib))
    for (op, tool), ss in samples.items():  # medians beside the best: one lucky run should not carry a verdict
        rows.append((f"{op} {opts.size_mib} MiB: {labels[(op, tool)]}, median", tool.split("+")[0],
                     statistics.median(x.seconds for x in ss), f"CPU {statistics.median(x.cpu_s for x in ss):.2f} s",
                     max(x.rss_mib for x in ss)))
    ratios.append((f"{opts.size_mib} MiB add: vault s / (age -e; sync)",
                   best[("add", "vault")].seconds / best[("add", "age+fsync")].seconds, "(target <= 1.0)"))
    ratios.append((f"{opts.size_mib} MiB add, medians: vault s / (age -e; sync)",
                   statistics.median(x.seconds for x in samples[("add", "vault")])
                   / statistics.median(x.seconds for x in samples[("add", "age+fsync")]), "(target <= 1.0)"))
    if ("add", "baseline") in best:
        ratios.append((f"{opts.size_mib} MiB add: baseline s / (age -e; sync)",
                       best[("add", "baseline")].seconds / best[("add", "age+fsync")].seconds, "(before)"))
    for op in ("add",) if opts.add_only else ("add", "view"):
        ratios.append((f"{opts.size_mib} MiB {op}: vault s / age s", best[(op, "vault")].seconds / best[(op, "age")].seconds,
                       "(the add fsyncs, age does not)" if op == "add" else "(target <= 1.0)"))


def bench_find(d: Path, opts, rows: list, ratios: list) -> None:
    root, ident_file, env = setup_vault(d, "find-vault")
    sizes = [opts.dossiers // 10, opts.dossiers]
    target = "bench customer 000007"  # in the first tenth: present at both sizes
    built = 0
    results = {}
    for n in sizes:
        print(f"building {n - built} more dossiers through the library (setup, not timed)", flush=True)
        run(worker_cmd("build", str(root), str(ident_file), str(n - built), str(built)), env)
        built = n
        os.sync()
        lib = run(worker_cmd("find", str(root), str(ident_file), target, str(opts.repeats)), env)
        r = json.loads(lib.out)
        if r["found"] != 1:
            raise SystemExit(f"find over {n} dossiers found {r['found']} dossiers, not 1")
        cli = [run([*vault_cmd(), "find", "--name", target, "--json"], env) for _ in range(opts.runs)]
        results[n] = (r["median"], min(c.seconds for c in cli))
        rows.append((f"find --name, {n} dossiers, library (median of {opts.repeats})", "vault", r["median"],
                     f"best {r['best'] * 1000:.1f} ms", lib.rss_mib))
        rows.append((f"vault find --name, {n} dossiers, CLI process", "vault", results[n][1], "",
                     max(c.rss_mib for c in cli)))
    small, large = sizes
    ratios.append((f"find, library: {large} / {small} dossiers", results[large][0] / results[small][0],
                   "(~1.0: does not grow with the count)"))
    ratios.append((f"find, CLI process: {large} / {small} dossiers", results[large][1] / results[small][1],
                   "(~1.0: does not grow with the count)"))


def main() -> None:
    compile_like_installed()
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.path.insert(0, str(REPO))
        return worker(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10000, help="4 KiB documents to add (default 10000)")
    parser.add_argument("--docs-dossiers", type=int, default=100, help="dossiers they go to (default 100)")
    parser.add_argument("--batch", type=int, default=25, help="files per documents.add call (default 25)")
    parser.add_argument("--bulk", type=int, default=250, help="files per documents.add_many call (default 250)")
    parser.add_argument("--only", default="docs,big,find", help="parts to run (default docs,big,find)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. `git archive main`): its doc add of the large document is "
                             "timed in the same runs")
    parser.add_argument("--add-only", action="store_true", help="large document: time the add only, not the view")
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the large document (default 1024)")
    parser.add_argument("--dossiers", type=int, default=10000,
                        help="find over this many dossiers and a tenth of it (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per process measurement, best kept (default 3)")
    parser.add_argument("--repeats", type=int, default=20, help="warm lookups per find measurement (default 20)")
    parser.add_argument("--dir", default=None, help="parent of the temporary directory (default /tmp)")
    opts = parser.parse_args()
    if opts.baseline:
        compile_like_installed(opts.baseline)
    require("age", "age-keygen", hint="apt install age")
    sys.path.insert(0, str(REPO))
    rows: list[tuple[str, str, float, str, float]] = []
    ratios: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="vault-bench-", dir=opts.dir) as tmp:
        d = Path(tmp)
        key = d / "age-key.txt"
        subprocess.run(["age-keygen", "-o", str(key)], check=True, stderr=subprocess.DEVNULL)
        recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True,
                                   text=True).stdout.strip()
        print(f"working in {d}; identity scrypt work factor lowered to 2^{BENCH_WORK_FACTOR} "
              "(vault.identity.SCRYPT_WORK_FACTOR, a bench seam) so that unlocking it costs milliseconds", flush=True)
        parts = opts.only.split(",")
        if "docs" in parts:
            bench_docs(d, opts, recipient, rows, ratios)
        if "big" in parts:
            bench_big(d, opts, key, recipient, rows, ratios)
        if "find" in parts:
            bench_find(d, opts, rows, ratios)

    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}} {'tool':<5} {'seconds':>9} {'rate':>16} {'peak RSS MiB':>12}")
    for what, tool, seconds, rate, rss in rows:
        print(f"{what:<{width}} {tool:<5} {seconds:9.4f} {rate:>16} {rss:12.1f}")
    print()
    for what, value, note in ratios:
        print(f"{what:<48} {value:6.2f}  {note}")
    print(f"\nprocess rows: best of {opts.runs} runs, wall time from process start to exit, peak RSS the largest seen "
          f"({'GNU time' if TIME else 'RUSAGE_CHILDREN'}); age -r each: RSS of the first 5 processes;")
    print(f"bench identity: scrypt 2^{BENCH_WORK_FACTOR} instead of 2^18; find dossiers built with fsync off and one "
          "plugin manager (setup only);")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other load makes the figures noisy)")


if __name__ == "__main__":
    main()
