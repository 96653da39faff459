"""Benchmark: ``vault register`` at two vault sizes — does its memory stay flat as the vault grows?

Run ``python bench/bench_register.py [--small 200] [--large 800] [--runs 3]``. One vault is built
with ``--small`` dossiers (through the library, fsync off: setup only), measured, then grown to
``--large`` and measured again. At each size, each in a fresh process, best of ``--runs``:

- ``vault register --csv`` as the supervisor (customer names decrypted: one key table per dossier);
- ``vault register --csv`` as an auditor (cleartext facts only);
- ``vault dossier list --all --json``, the reference in the same run: it reads every manifest into one list
  before printing, so its memory grows with the vault.

It prints seconds and peak RSS per process and, per command, the large size's peak RSS over the
small size's (≈ 1.0: flat) and its seconds over the small size's (≈ large/small: linear), with the
load average. Not a test: nothing here asserts on time or memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from _common import load_line  # same directory
from bench_vault import BENCH_WORK_FACTOR, PASSPHRASE, run, setup_vault, vault_cmd, worker_cmd  # same directory


def _add_auditor(root: Path, ident_file: Path, d: Path, env: dict[str, str]) -> dict[str, str]:
    from vault.store import identity

    aud = d / "auditor.key"
    identity.save_identity(aud, identity.MemberIdentity.generate(), PASSPHRASE)
    line = identity.load_identity(aud, PASSPHRASE).public.line()
    subprocess.run([*vault_cmd(), "member", "add", "auditor", "--key", line, "--role", "auditor", "--dept", "audit"],
                   env=dict(os.environ, **env), check=True, capture_output=True)
    return dict(env, VAULT_IDENTITY=str(aud))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--large", type=int, default=800)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=opts.dir) as tmp:
        d = Path(tmp)
        root, ident_file, env = setup_vault(d, "register-vault")
        print(f"identity work factor lowered to 2^{BENCH_WORK_FACTOR} (bench seam)", flush=True)
        auditor = _add_auditor(root, ident_file, d, env)
        commands = {
            "register --csv (supervisor, names)": ([*vault_cmd(), "register", "--csv"], env),
            "register --csv (auditor, no names)": ([*vault_cmd(), "register", "--csv"], auditor),
            "dossier list --all --json (reference)": ([*vault_cmd(), "dossier", "list", "--all", "--json"], env),
        }
        results: dict[str, dict[int, tuple[float, float]]] = {k: {} for k in commands}
        built = 0
        for size in (opts.small, opts.large):
            print(f"building {size - built} dossiers (to {size})", flush=True)
            run(worker_cmd("build", str(root), str(ident_file), str(size - built), str(built)), env)
            built = size
            for name, (argv, e) in commands.items():
                samples = [run(argv, e) for _ in range(opts.runs)]
                lines = samples[0].out.count("\n")
                results[name][size] = (min(s.seconds for s in samples), max(s.rss_mib for s in samples))
                print(f"  {name}: {lines} lines", flush=True)
        print(f"\n{'command':<38} {'dossiers':>8} {'seconds':>8} {'peak MiB':>9}")
        for name, by_size in results.items():
            for size, (sec, rss) in by_size.items():
                print(f"{name:<38} {size:>8} {sec:>8.2f} {rss:>9.1f}")
        print(f"\n{'command':<38} {'RSS large/small':>15} {'time large/small':>17}")
        for name, by_size in results.items():
            (s_sec, s_rss), (l_sec, l_rss) = by_size[opts.small], by_size[opts.large]
            print(f"{name:<38} {l_rss / s_rss:>15.2f} {l_sec / s_sec:>17.2f}")
        print("\n" + load_line())


if __name__ == "__main__":
    main()
