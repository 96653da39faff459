"""Benchmark: ``vault find`` and adding a dossier to the sealed search index at 1,000, 10,000 and 100,000 dossiers.

Run ``python bench/bench_find.py [--sizes 1000,10000,100000] [--runs 5] [--repeats 20]``. At each
size a vault gets ``--real`` dossiers created for real (the ones the timed queries find, with
signed manifests) and the rest of the index is filled *synthetically through the engine's API*
(``SearchDB.put`` then ``searchindex.save``): creating 100,000 real dossiers takes hours, and
``find`` reads manifests only for the rows it shows, so the synthetic rows cost what real ones
would in the index. Every timed operation is a process of its own except the in-process breakdown.
Reference in the same run: ``age -d`` of a file of the base's size, and ``vault --version`` (Python
start-up). Not a test: nothing here asserts on timing. ``bench_find.py worker …`` is the child side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_vault import BENCH_WORK_FACTOR, run, setup_vault, vault_cmd  # same directory

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CITIES = "杭州 上海 北京 深圳 广州 南京 苏州 成都 武汉 西安".split()
TRADES = "科技 电子 贸易 网络 信息 物流 医药 建设 餐饮 文化".split()
POOL = "华信达宏盛金源泰安博远恒兴新瑞德丰鑫通国东海明凯佳利鼎晨正嘉"
SURNAMES = "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he lin".split()
GIVEN = "wei fang na min jing li qiang lei jun yang yong yan jie tao ming chao xiu xia".split()


def synthetic(rnd: random.Random, i: int) -> dict:
    if rnd.random() < 0.6:
        name = rnd.choice(CITIES) + "".join(rnd.choice(POOL) for _ in range(2)) + rnd.choice(TRADES) + "有限公司"
    else:
        name = f"{rnd.choice(SURNAMES).title()} {rnd.choice(GIVEN).title()}{rnd.choice(GIVEN)}"
    return {"name": name, "contact": [f"+86 1{rnd.randrange(10**9, 10**10)}", f"c{i}@mail{rnd.randrange(500)}.example"],
            "address": rnd.choice(CITIES) + "市" + "".join(rnd.choice(POOL) for _ in range(3)) + f"路 {i % 900} 号"}


def _actor(vault_dir: str, ident_file: str):
    from vault.archive.vault import Vault
    from vault.store import identity

    ident = identity.load_identity(Path(ident_file), identity.passphrase_from_env())
    return Vault.open(Path(vault_dir)).act_as(ident)


def worker(op: str, args: list[str]) -> None:
    """The child side; prints JSON."""
    from vault.archive import searchindex
    from vault.office import dossier

    actor = _actor(args[0], args[1])
    if op == "build":  # VAULT ID SIZE REAL   (setup, not timed)
        from vault.office import find as finder

        size, real = int(args[2]), int(args[3])
        for i in range(real):
            dossier.create(actor, customer_type="enterprise", business="network-services", dept="sales",
                           profile={"name": f"杭州目标{i:02d}科技有限公司", "aliases": [f"Target Customer {i:02d}"],
                                    "contact": [f"+86 571 8800 {i:04d}"]})
        finder.rebuild(actor)
        idx = searchindex.open_index(actor)
        rnd = random.Random(size)
        for i in range(size - real):
            idx.db.put(f"{i:032x}", number=f"S-2026-{i:06d}", version=1, sealed_sha256="0" * 64, by="bench",
                       profile=synthetic(rnd, i))
        with actor.vault.lock(exclusive=True):
            searchindex.save(actor, idx)
        print(json.dumps({"base_bytes": (searchindex.search_dir(actor.vault.root) / "base.age").stat().st_size}))
    elif op == "breakdown":  # VAULT ID REPEATS: open the index and query it, in one process
        reps = int(args[2])
        opens, selective, broad, two = [], [], [], []
        hits = 0
        for _ in range(reps):
            t = time.perf_counter()
            idx = searchindex.open_index(actor)
            opens.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert len(idx.db.search("目标07科技")) == 1
            selective.append(time.perf_counter() - t)
            t = time.perf_counter()
            hits = len(idx.db.search("有限公司"))
            broad.append(time.perf_counter() - t)
            t = time.perf_counter()
            idx.db.search("杭州")
            two.append(time.perf_counter() - t)
        med = statistics.median
        print(json.dumps({"open": med(opens), "selective": med(selective), "broad": med(broad), "broad_hits": hits,
                          "two_char": med(two)}))
    elif op == "add":  # VAULT ID REPEATS: the index write of a dossier create (one delta)
        times = []
        v = actor.vault
        for i in range(int(args[2])):
            m = {"id": f"{i:032x}", "number": f"A-2026-{i:06d}", "profile": [{"version": 1, "sealed": "AAAA"}]}
            with v.lock(exclusive=True):
                t = time.perf_counter()
                searchindex.add_profile(actor, m, {"name": f"新增客户{i}", "contact": ["+86 10 1234 5678"]})
                times.append(time.perf_counter() - t)
        for p in (searchindex.search_dir(v.root) / "delta").glob("*.age"):
            p.unlink()  # leave the vault as the process measurements expect it
        print(json.dumps({"median": statistics.median(times), "best": min(times)}))
    else:
        raise SystemExit(f"unknown worker op {op}")


def worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "worker", *args]


def best_of(runs: int, argv: list[str], env: dict | None = None) -> tuple[float, float, float]:
    samples = [run(argv, env) for _ in range(runs)]
    secs = [s.seconds for s in samples]
    return min(secs), statistics.median(secs), max(s.rss_mib for s in samples)


def main() -> None:
    # Byte-code as an installed package has it (a shell with PYTHONDONTWRITEBYTECODE would otherwise
    # time the compiling of every changed module in every process).
    import compileall

    for pkg in ("vault", "plugins"):
        compileall.compile_dir(str(Path(__file__).resolve().parent.parent / pkg), quiet=1)
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.path.insert(0, str(REPO))
        return worker(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="dossier counts (default 1000,10000,100000)")
    parser.add_argument("--real", type=int, default=20, help="dossiers created for real at each size (default 20)")
    parser.add_argument("--runs", type=int, default=5, help="runs per process measurement (default 5)")
    parser.add_argument("--repeats", type=int, default=10, help="in-process repeats (default 10)")
    parser.add_argument("--dir", default=None, help="parent of the temporary directory (default /tmp)")
    opts = parser.parse_args()
    sys.path.insert(0, str(REPO))
    sizes = [int(x) for x in opts.sizes.split(",")]
    rows, finds, adds = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="vault-bench-find-", dir=opts.dir) as tmp:
        d = Path(tmp)
        key = d / "age-key.txt"
        subprocess.run(["age-keygen", "-o", str(key)], check=True, stderr=subprocess.DEVNULL)
        rcpt = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True).stdout.strip()
        startup = None
        for n in sizes:
            root, ident, env = setup_vault(d, f"v{n}")
            t = time.perf_counter()
            built = json.loads(run(worker_cmd("build", str(root), str(ident), str(n), str(opts.real)), env).out)
            print(f"{n} dossiers: index built in {time.perf_counter() - t:.1f} s (setup), base.age "
                  f"{built['base_bytes'] / 1e6:.1f} MB", flush=True)
            v = vault_cmd()
            if startup is None:
                startup = best_of(opts.runs, [*v, "--version"])
                rows.append(("vault --version (Python start-up, reference)", *startup))
            out = run([*v, "find", "目标07科技", "--json"], env).out
            assert [r["number"] for r in json.loads(out)] == ["E-2026-000008"], out
            finds[n] = best_of(opts.runs, [*v, "find", "目标07科技", "--json"], env)
            rows.append((f"vault find 目标07科技, {n} dossiers", *finds[n]))
            rows.append((f"vault find --name 'target customer 07', {n} dossiers",
                         *best_of(opts.runs, [*v, "find", "--name", "target customer 07", "--json"], env)))
            blob = d / f"same-size-{n}.age"
            plain = d / "plain"
            plain.write_bytes(os.urandom(built["base_bytes"]))
            run(["age", "-r", rcpt, "-o", str(blob), str(plain)])
            rows.append((f"age -d of {built['base_bytes'] / 1e6:.1f} MB (reference)",
                         *best_of(opts.runs, ["age", "-d", "-i", str(key), "-o", os.devnull, str(blob)])))
            br = json.loads(run(worker_cmd("breakdown", str(root), str(ident), str(opts.repeats)), env).out)
            print(f"  in one process (median of {opts.repeats}): open index {br['open'] * 1000:.1f} ms; "
                  f"selective query {br['selective'] * 1000:.2f} ms; '有限公司' ({br['broad_hits']} hits) "
                  f"{br['broad'] * 1000:.1f} ms; '杭州' {br['two_char'] * 1000:.1f} ms", flush=True)
            add = json.loads(run(worker_cmd("add", str(root), str(ident), "20"), env).out)
            adds[n] = add["median"]
            print(f"  index write of one dossier (a sealed delta): median {add['median'] * 1000:.2f} ms, "
                  f"best {add['best'] * 1000:.2f} ms", flush=True)
            create = [*v, "dossier", "create", "--type", "enterprise", "--business", "bench", "--dept", "sales",
                      "--name", "新增客户", "--json"]
            rows.append((f"vault dossier create, {n} dossiers", *best_of(opts.runs, create, env)))

    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'process':<{width}} {'best s':>8} {'median s':>9} {'peak RSS MiB':>13}")
    for what, best, med, rss in rows:
        print(f"{what:<{width}} {best:8.3f} {med:9.3f} {rss:13.1f}")
    lo, hi = sizes[0], sizes[-1]
    print(f"\nfind process, {hi} / {lo} dossiers: {finds[hi][1] / finds[lo][1]:.2f} (median; target within 2)")
    print(f"index write of one dossier, {hi} / {lo}: {adds[hi] / adds[lo]:.2f} (does not grow with the vault)")
    print(f"bench identity: scrypt 2^{BENCH_WORK_FACTOR} instead of 2^18 (unlocking a real identity adds its KDF "
          f"to every process); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
