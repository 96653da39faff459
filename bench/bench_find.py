"""Benchmark: ``vault find`` (with and without the identity agent) and the index write at 1,000, 10,000 and 100,000 dossiers.

Run ``python bench/bench_find.py [--sizes 1000,10000,100000] [--runs 7] [--repeats 10] [--keep DIR]``.
At each size a vault gets that many dossiers created for real through the library — signed
manifests, sealed profiles, one history entry each — the first ``--real`` with the names the timed
queries find, the rest synthetic (60 % Chinese company names, 40 % pinyin personal names, each
with a phone, an e-mail and a Chinese address); then the index is built. With ``--keep DIR`` the
vaults are kept and reused by the next run (building 100,000 takes most of an hour). Every timed command is a process of its own, spawn to exit, the
runs of all commands at one size interleaved; one ``vault agent start`` serves the agent rows.
References in the same run: ``python -c pass`` (the interpreter's floor), ``vault --version``
(Python start-up with the CLI) and ``age -d`` of a file the size of one gram shard; with ``--baseline DIR``
(another checkout) its find and dossier list in the same interleaved runs. Not a test:
nothing here asserts on timing. ``bench_find.py worker …`` is the child side.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_vault import BENCH_WORK_FACTOR, run, setup_vault, vault_cmd  # same directory

from _common import compile_like_installed  # same directory
from bench_startup import wait_for_runner  # same directory

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


def _stand_in(i: int):
    """A manifest with what the index records of a dossier (id, number, newest profile version); the rest
    are placeholders the index never reads."""
    from vault.archive.manifestrecord import Manifest, ProfileVersion
    from vault.archive.states import DossierStatus
    from vault.store.typed import Signature

    return Manifest(format=1, id=f"{i:032x}", number=f"A-2026-{i:06d}", customer_type="enterprise", business="x",
                    dept="x", class_="enterprise/x/2026", created="2026-01-01", created_at="", created_by="",
                    status=DossierStatus.OPEN, revision=1, next_doc=1,
                    profile=(ProfileVersion(version=1, key="", at="", by="", fields=(), sealed="AAAA"),), documents=(),
                    updated_at="", updated_by="", signature=Signature(by="", ed25519=""))


def worker(op: str, args: list[str]) -> None:
    """The child side; prints JSON."""
    from vault.archive import searchindex, searchseal, searchwrite
    from vault.office import dossier

    if op == "sizes":  # VAULT: the index files' sizes
        sd = searchseal.search_dir(Path(args[0]))
        g = [p.stat().st_size for p in (sd / "g").glob("*.age")]
        d = [p.stat().st_size for p in (sd / "d").glob("*.age")]
        print(json.dumps({"index_bytes": sum(g) + sum(d), "gram_shard": statistics.median(g),
                          "dossier_shard": statistics.median(d), "head": (sd / "head.age").stat().st_size}))
        return
    actor = _actor(args[0], args[1])
    if op == "build":  # VAULT ID SIZE REAL   (setup, not timed)
        # Every dossier is created for real (signed manifest, sealed profile, history entry), so the
        # history, the client state and the manifests are a real vault's. Setup only: fsync off, one
        # plugin manager, no per-command sweep of the directory and no client checkpoint per command
        # (the timed commands run unpatched in fresh processes).
        from vault import plugins
        from vault.archive import recovery, witness
        import vault.archive.vault as vault_mod
        from vault.office import find as finder

        os.fsync = lambda fd: None
        pm = plugins.get_plugin_manager()
        plugins.get_plugin_manager = lambda **kw: pm
        witness.save = lambda v, st: None
        vault_mod.sweep_temporaries = lambda root: []  # type: ignore[assignment]
        recovery.recover = lambda v: []
        size, real = int(args[2]), int(args[3])
        rnd = random.Random(size)
        t = time.perf_counter()
        for i in range(size):
            profile = ({"name": f"杭州目标{i:02d}科技有限公司", "aliases": [f"Target Customer {i:02d}"],
                        "contact": [f"+86 571 8800 {i:04d}"]} if i < real else synthetic(rnd, i))
            dossier.create(actor, customer_type="enterprise", business="network-services", dept="sales",
                           profile=profile)
            if i % 10000 == 9999:
                print(f"  {i + 1} dossiers, {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        finder.rebuild(actor)
        print("{}")
    elif op == "breakdown":  # VAULT ID REPEATS: open the index and query it, in one process (fresh each time)
        reps = int(args[2])
        opens, selective, broad, two = [], [], [], []
        hits = 0
        for _ in range(reps):
            t = time.perf_counter()
            idx = searchindex.open_index(actor)
            opens.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert idx.db.search_page("目标07科技", None, 20)[0] == 1
            selective.append(time.perf_counter() - t)
            idx = searchindex.open_index(actor)
            t = time.perf_counter()
            hits = idx.db.search_page("有限公司", None, 20)[0]
            broad.append(time.perf_counter() - t)
            idx = searchindex.open_index(actor)
            t = time.perf_counter()
            idx.db.search_page("杭州", None, 20)
            two.append(time.perf_counter() - t)
        med = statistics.median
        print(json.dumps({"open": med(opens), "selective": med(selective), "broad": med(broad), "broad_hits": hits,
                          "two_char": med(two)}))
    elif op == "add":  # VAULT ID REPEATS: the index write of a dossier create (one delta)
        times = []
        v = actor.vault
        for i in range(int(args[2])):
            m = _stand_in(i)
            with v.lock(exclusive=True):
                t = time.perf_counter()
                searchwrite.add_profile(actor, m, {"name": f"新增客户{i}", "contact": ["+86 10 1234 5678"]})
                times.append(time.perf_counter() - t)
        # The merge those deltas make due (every MERGE_AFTER changes, by the next find).
        with v.lock(exclusive=True):  # (taking the lock walks the vault directory: not the index's cost)
            t = time.perf_counter()
            idx = searchindex.open_index(actor)
            searchwrite.save(actor, idx)
            merge = time.perf_counter() - t
        print(json.dumps({"median": statistics.median(times), "best": min(times), "merge": merge,
                          "merged": int(args[2])}))
    else:
        raise SystemExit(f"unknown worker op {op}")


def worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "worker", *args]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system: other load inflates them far less) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=dict(os.environ, **{"PYTHONPATH": str(REPO), **env}), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def interleaved(runs: int, cases: list[tuple[str, list[str], dict]]) -> dict[str, tuple[float, float, float]]:
    """Each case ``runs`` times, the runs of all cases interleaved: (median wall, best wall, median CPU)."""
    for _, argv, env in cases:
        timed(argv, env)  # warm the page cache
    wall: dict[str, list[float]] = {c[0]: [] for c in cases}
    cpu: dict[str, list[float]] = {c[0]: [] for c in cases}
    for _ in range(runs):
        for name, argv, env in cases:
            w, c, _ = timed(argv, env)
            wall[name].append(w)
            cpu[name].append(c)
    return {n: (statistics.median(wall[n]), min(wall[n]), statistics.median(cpu[n])) for n in wall}


def main() -> None:
    compile_like_installed()
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.path.insert(0, str(REPO))
        return worker(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="dossier counts (default 1000,10000,100000)")
    parser.add_argument("--real", type=int, default=20, help="dossiers created for real at each size (default 20)")
    parser.add_argument("--runs", type=int, default=7, help="runs per process measurement (default 7)")
    parser.add_argument("--repeats", type=int, default=10, help="in-process repeats (default 10)")
    parser.add_argument("--dir", default=None, help="parent of the temporary directory (default /tmp)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout (e.g. git archive main | tar -x "
                        "-C DIR): its find and dossier list with the agent run in the same interleaved runs")
    parser.add_argument("--keep", default=None, help="keep the built vaults in this directory and reuse them "
                        "(building 100,000 real dossiers takes most of an hour)")
    opts = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if opts.baseline:
        compileall.compile_dir(str(opts.baseline / "vault"), quiet=1)
    sizes = [int(x) for x in opts.sizes.split(",")]
    v = vault_cmd()
    table: list[tuple[str, ...]] = []
    finds: dict[int, float] = {}
    runner_finds: dict[int, float] = {}
    loads = [os.getloadavg()[0]]
    d = Path(tempfile.mkdtemp(prefix="vbf-", dir=opts.dir or "/tmp"))  # short: the agent's socket path
    agent_pid = base_agent_pid = None
    try:
        key = d / "age-key.txt"
        subprocess.run(["age-keygen", "-o", str(key)], check=True, stderr=subprocess.DEVNULL)
        rcpt = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True).stdout.strip()
        for n in sizes:
            work = Path(opts.keep) / f"n{n}" if opts.keep else d / f"n{n}"
            if (work / "v" / "vault.toml").exists():
                root, ident = work / "v", work / "bench.key"
                env = {"VAULT_DIR": str(root), "VAULT_IDENTITY": str(ident), "VAULT_PASSPHRASE_FILE": str(work / "pass")}
                print(f"{n} dossiers: the vault kept in {work}", flush=True)
            else:
                work.mkdir(parents=True, exist_ok=True)
                root, ident, env = setup_vault(work, "v")
                t = time.perf_counter()
                run(worker_cmd("build", str(root), str(ident), str(n), str(opts.real)), env)
                print(f"{n} dossiers created and indexed in {time.perf_counter() - t:.0f} s (setup)", flush=True)
            built = json.loads(run(worker_cmd("sizes", str(root)), env).out)
            print(f"  index: {built['index_bytes'] / 1e6:.1f} MB in all, a gram shard {built['gram_shard'] / 1e3:.0f} kB, "
                  f"a dossier shard {built['dossier_shard'] / 1e3:.0f} kB, the head {built['head'] / 1e3:.0f} kB",
                  flush=True)
            (d / "run").mkdir(mode=0o700, exist_ok=True)
            env["XDG_RUNTIME_DIR"] = str(d / "run")
            (d / "no-agent").mkdir(mode=0o700, exist_ok=True)
            # The environment the timed commands get (timed()): a runner serves only clients like itself.
            out = subprocess.run([*v, "agent", "start"], env=dict(os.environ, PYTHONPATH=str(REPO), **env), check=True,
                                 capture_output=True, text=True).stdout
            agent_pid = int(re.search(r"pid (\d+)", out).group(1))  # echo 'Agent pid N'; (in the office's language)
            runner = {k: x for k, x in env.items() if k != "VAULT_PASSPHRASE_FILE"}
            wait_for_runner(v, dict(os.environ, PYTHONPATH=str(REPO), **runner))
            agent = dict(runner, VAULT_RUNNER="0")  # the agent alone: the command in a process of its own
            no_agent = dict(env, XDG_RUNTIME_DIR=str(d / "no-agent"))
            out = timed([*v, "find", "目标07科技", "--json"], agent)[2]
            assert [r["number"] for r in json.loads(out)] == ["E-2026-000008"], out
            blob = d / "shard-size.age"
            (d / "plain").write_bytes(os.urandom(int(built["gram_shard"])))
            subprocess.run(["age", "-r", rcpt, "-o", str(blob), str(d / "plain")], check=True)
            cases = [
                ("python -c pass", [sys.executable, "-c", "pass"], env),
                ("vault --version", [*v, "--version"], env),
                ("find 目标07科技, runner+agent", [*v, "find", "目标07科技", "--json"], runner),
                ("find 目标07科技, agent", [*v, "find", "目标07科技", "--json"], agent),
                ("find 目标07科技, passphrase", [*v, "find", "目标07科技", "--json"], no_agent),
                ("find --name 'target customer 07', agent", [*v, "find", "--name", "target customer 07", "--json"], agent),
                ("find 有限公司 (60% of the vault), runner+agent", [*v, "find", "有限公司", "--json"], runner),
                ("find 有限公司 (60% of the vault), agent", [*v, "find", "有限公司", "--json"], agent),
                ("find 有限公司 --offset 20 (next page), agent", [*v, "find", "有限公司", "--offset", "20", "--json"],
                 agent),
                ("find 杭州 (two characters), runner+agent", [*v, "find", "杭州", "--json"], runner),
                ("find 杭州 (two characters), agent", [*v, "find", "杭州", "--json"], agent),
                ("dossier list, runner+agent", [*v, "dossier", "list", "--json"], runner),
                ("dossier list, agent", [*v, "dossier", "list", "--json"], agent),
                ("dossier list, passphrase", [*v, "dossier", "list", "--json"], no_agent),
                ("age -d of one gram shard's size", ["age", "-d", "-i", str(key), "-o", os.devnull, str(blob)], env),
            ]
            if opts.baseline:
                base = dict(agent, PYTHONPATH=str(opts.baseline.resolve()), PYTHONSAFEPATH="1")
                bv = [sys.executable, "-m", "vault"]
                cases += [("baseline: find 目标07科技, agent", [*bv, "find", "目标07科技", "--json"], base),
                          ("baseline: find 有限公司, agent", [*bv, "find", "有限公司", "--json"], base),
                          ("baseline: dossier list, agent", [*bv, "dossier", "list", "--json"], base)]
                # The baseline's own agent and runner (a runner serves only its own installation).
                (d / "run-base").mkdir(mode=0o700, exist_ok=True)
                base_runner = dict(base, XDG_RUNTIME_DIR=str(d / "run-base"))
                del base_runner["VAULT_RUNNER"]
                out = subprocess.run([*bv, "agent", "start"], check=True,
                                     env=dict(os.environ, **base_runner, VAULT_PASSPHRASE_FILE=env["VAULT_PASSPHRASE_FILE"]),
                                     capture_output=True, text=True).stdout
                base_agent_pid = int(re.search(r"pid (\d+)", out).group(1))
                wait_for_runner(bv, dict(os.environ, **base_runner))
                cases += [(f"baseline: find {q}, runner+agent", [*bv, "find", q, "--json"], base_runner)
                          for q in ("目标07科技", "有限公司", "杭州")]
            loads.append(os.getloadavg()[0])
            res = interleaved(opts.runs, cases)
            loads.append(os.getloadavg()[0])
            finds[n] = res["find 目标07科技, agent"][0]
            runner_finds[n] = res["find 目标07科技, runner+agent"][0]
            for name, (med, best, cpu) in res.items():
                table.append((f"{n:,}", name, f"{med * 1000:.0f}", f"{best * 1000:.0f}", f"{cpu * 1000:.0f}"))
            br = json.loads(run(worker_cmd("breakdown", str(root), str(ident), str(opts.repeats)), env).out)
            print(f"  in one process (median of {opts.repeats}): open the index (head) {br['open'] * 1000:.1f} ms; "
                  f"then '目标07科技' {br['selective'] * 1000:.1f} ms; '有限公司' ({br['broad_hits']} hits, first page) "
                  f"{br['broad'] * 1000:.1f} ms; '杭州' {br['two_char'] * 1000:.1f} ms", flush=True)
            add = json.loads(run(worker_cmd("add", str(root), str(ident), "20"), env).out)
            print(f"  index write of one dossier (a sealed delta): median {add['median'] * 1000:.2f} ms, "
                  f"best {add['best'] * 1000:.2f} ms; merging those {add['merged']} deltas {add['merge']:.2f} s",
                  flush=True)
            os.kill(agent_pid, 15)
            agent_pid = None
            if base_agent_pid:
                os.kill(base_agent_pid, 15)
                base_agent_pid = None
    finally:
        if agent_pid:
            os.kill(agent_pid, 15)
        if base_agent_pid:
            os.kill(base_agent_pid, 15)
        shutil.rmtree(d, ignore_errors=True)

    print()
    widths = [max(len(r[i]) for r in table + [("size", "process", "median ms", "best ms", "CPU ms")]) for i in range(5)]
    print("  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in
                    enumerate(zip(("size", "process", "median ms", "best ms", "CPU ms"), widths))))
    for r in table:
        print("  ".join(x.ljust(w) if i < 2 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths))))
    lo, hi = sizes[0], sizes[-1]
    print(f"\nfind with the agent, {hi:,} / {lo:,} dossiers: {finds[hi] / finds[lo]:.2f} (median; target within 2)")
    print(f"find through the runner with the agent, {hi:,} / {lo:,} dossiers: "
          f"{runner_finds[hi] / runner_finds[lo]:.2f}")
    print("runner+agent rows: the command runs in the runner's child, so their CPU column is the client's only")
    print(f"bench identity: scrypt 2^{BENCH_WORK_FACTOR} instead of 2^18 (without the agent a real identity adds its "
          f"KDF to every process); load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
