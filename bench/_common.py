"""What every benchmark does the same way: byte-code as installed, the tools it compares against, timing, load."""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent


def compile_like_installed(root: Path = REPO) -> None:
    """Byte-code as an installed package has it: a shell with PYTHONDONTWRITEBYTECODE would otherwise
    time the compiling of every changed module in every process."""
    for pkg in ("vault", "plugins"):
        compileall.compile_dir(str(root / pkg), quiet=1)


def require(*tools: str, hint: str = "") -> None:
    """Stop with one line when a reference tool is not on PATH: a ratio needs both sides."""
    for tool in tools:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found on PATH{f' ({hint})' if hint else ''}")


def timed(argv: list[str], env: dict[str, str], *, sync: bool = False) -> float:
    """Wall seconds of one run of ``argv``; ``sync`` first, so no earlier write-back is charged to it.
    A failed run stops the benchmark with the end of its output (a fast failure is not a result)."""
    if sync:
        subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    took = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return took


def timed_cpu(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU = user + system) seconds of one run of ``argv`` after ``sync``; on a shared machine
    the CPU time moves far less with the load than the wall time. A failed run stops the bench."""
    subprocess.run(["sync"], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return took, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def du(path: Path) -> int:
    """Bytes in the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_line() -> str:
    """The load the figures were taken at: compare ratios within a run, not seconds across runs."""
    return f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"


def restic_args(doc: str, more: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """Byte-code as installed, then the command line of a benchmark that builds an archive
    (``archive_options``, and ``more``'s) and measures the vault against restic, which must be there."""
    compile_like_installed()
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    archive_options(ap)
    if more is not None:
        more(ap)
    args = ap.parse_args()
    require("restic", hint="Debian package restic")
    return args


def restic_archive(args: argparse.Namespace, work: Path, passphrase: str) -> tuple[tuple, dict[str, str]]:
    """The archive ``args`` asks for, built in ``work`` (``build_archive``'s result, said with how long
    it took), and the environment both tools run in, with an initialised restic repository beside it."""
    t = time.monotonic()
    built = build_archive(work, args.docs, args.size_mib * (1 << 20) // args.docs, args.per_dossier, passphrase)
    print(f"built {args.docs} documents, {args.size_mib} MiB, in {time.monotonic() - t:.1f}s ({built[0]})", flush=True)
    env = restic_env(work, passphrase)
    subprocess.run(["restic", "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    return built, env


def restic_env(work: Path, passphrase: str) -> dict[str, str]:
    """The environment both tools run in, for an archive built in ``work`` (``restic_archive``)."""
    return dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(work / "cache"),
                RESTIC_PASSWORD=passphrase, RESTIC_REPOSITORY=str(work / "restic"),
                RESTIC_CACHE_DIR=str(work / "cache" / "restic"))


def archive_options(ap) -> None:
    """The size of the archive a benchmark builds (``build_archive``) and where it builds it."""
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--per-dossier", type=int, default=10, help="documents per dossier")
    ap.add_argument("--dir", default=None)


def build_archive(root: Path, docs: int, size: int, per: int, passphrase: str):
    """A vault under ``root/vault`` with one supervisor and ``docs`` documents of ``size`` random bytes,
    ``per`` per dossier, added 250 at a time; returns the vault's root, the dossier numbers, the
    supervisor acting, and the supervisor's identity file (protected by ``passphrase``)."""
    import random

    sys.path.insert(0, str(REPO))
    from vault.archive.vault import Vault
    from vault.office import documents, dossier
    from vault.store import identity

    identity.SCRYPT_WORK_FACTOR = 10  # a bench seam: the benchmarks time the archive, not key derivation
    ident = identity.MemberIdentity.generate()
    ident_file = root / "alice.key"
    identity.save_identity(ident_file, ident, passphrase)
    v = Vault.init(root / "vault", supervisor="alice", key=ident.public)
    actor = v.act_as(ident)
    src = root / "src"
    src.mkdir()
    rnd = random.Random(1)
    numbers: list[str] = []
    batch: list[tuple[str, list[Path]]] = []

    def flush() -> None:
        documents.add_many(actor, batch, category="contract", source="bench", date="2026-03-01", original=True)
        for _, fs in batch:
            for f in fs:
                f.unlink()
        batch.clear()

    k = 0
    for d in range(0, docs, per):
        no = dossier.create(actor, customer_type="enterprise", business="bench", dept="sales",
                            profile={"name": f"Customer {d}"})
        numbers.append(no)
        files = []
        for _ in range(min(per, docs - d)):
            f = src / f"{k}.bin"
            k += 1
            f.write_bytes(rnd.randbytes(size))
            files.append(f)
        batch.append((no, files))
        if sum(len(fs) for _, fs in batch) >= 250:
            flush()
    if batch:
        flush()
    shutil.rmtree(src)
    return v.root, numbers, actor, ident_file
