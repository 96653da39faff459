"""What every benchmark does the same way: byte-code as installed, the tools it compares against, timing, load."""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


def du(path: Path) -> int:
    """Bytes in the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_line() -> str:
    """The load the figures were taken at: compare ratios within a run, not seconds across runs."""
    return f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
