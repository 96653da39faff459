"""History replay at scale: ``vault check`` and one ``doc view`` at 10,000 history entries.

    .venv/bin/python bench/bench_history.py        # --entries N (default 10000), --runs N, --dir DIR

Builds a vault (identities at scrypt 2^10, a test and bench seam) with 20 dossiers of one 64 KiB
document each, then appends read entries (``doc.view``, through the library, in batches) until the
history holds ``--entries`` entries. Then, each ``--runs`` times, as fresh processes:

- ``vault check`` with a client that never saw the vault (replays the whole history from genesis);
- ``vault doc view --output`` with a cold client (full replay) and a warm one (it remembered the
  checkpoint, so it replays only the entries since — here one);
- ``age -d`` of a file of the same size, the reference for what viewing a document costs.

Prints seconds (best), the ratio to ``age -d`` and the load average. Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import compile_like_installed, load_line, timed  # same directory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def build(root: Path, entries: int) -> tuple[str, Path]:
    from vault.archive import audit
    from vault.office.membership import add_member
    from vault.archive.vault import Vault
    from vault.office import documents, dossier
    from vault.store import identity

    identity.SCRYPT_WORK_FACTOR = 10
    alice, bob = identity.MemberIdentity.generate(), identity.MemberIdentity.generate()
    identity.save_identity(root / "bob.key", bob, "bench")
    v = Vault.init(root / "vault", supervisor="alice", key=alice.public)
    add_member(v.act_as(alice), "bob", bob.public, ["archivist"], "archive")
    actor = Vault.open(v.root).act_as(bob)
    doc = root / "doc.bin"
    doc.write_bytes(os.urandom(64 * 1024))
    first = None
    for i in range(20):
        number = dossier.create(actor, customer_type="enterprise", business="network-services", dept="sales",
                                profile={"name": f"Customer {i}"})
        docno = documents.add(actor, number, [doc], category="other", source="bench", date="2026-01-01",
                              original=True)[0]
        first = first or docno
    have = sum(1 for _ in audit.entries(actor.vault))
    while have < entries:
        n = min(1000, entries - have)
        audit.record_many(actor, [{"action": "doc.view", "number": first}] * n)
        have += n
    return first, doc


def main() -> None:
    compile_like_installed()
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-history-", dir=args.dir))
    try:
        docno, doc = build(tmp, args.entries)
        (tmp / "pass").write_text("bench\n")
        base = dict(os.environ, VAULT_DIR=str(tmp / "vault"), VAULT_IDENTITY=str(tmp / "bob.key"),
                    VAULT_PASSPHRASE_FILE=str(tmp / "pass"))
        vault = [sys.executable, "-m", "vault"]
        subprocess.run(["age-keygen", "-o", str(tmp / "age.key")], check=True, capture_output=True)
        rcpt = subprocess.run(["age-keygen", "-y", str(tmp / "age.key")], check=True, capture_output=True,
                              text=True).stdout.strip()
        subprocess.run(["age", "-r", rcpt, "-o", str(tmp / "doc.age"), str(doc)], check=True)
        rows: dict[str, list[float]] = {"vault check (cold client)": [], "vault doc view (cold client)": [],
                                        "vault doc view (warm client)": [], "age -d (same size)": []}
        for i in range(args.runs):
            cold = dict(base, VAULT_STATE_DIR=str(tmp / f"cold-{i}"))
            rows["vault check (cold client)"].append(timed([*vault, "check"], cold))
            cold2 = dict(base, VAULT_STATE_DIR=str(tmp / f"cold-view-{i}"))
            out = tmp / "out.bin"
            rows["vault doc view (cold client)"].append(
                timed([*vault, "doc", "view", docno, "--output", str(out)], cold2))
            out.unlink()
            rows["vault doc view (warm client)"].append(
                timed([*vault, "doc", "view", docno, "--output", str(out)], cold2))
            out.unlink()
            rows["age -d (same size)"].append(timed(["age", "-d", "-i", str(tmp / "age.key"), "-o", str(out),
                                                    str(tmp / "doc.age")], base))
            out.unlink()
        ref = min(rows["age -d (same size)"])
        entries = sum(1 for _ in open(tmp / "vault" / "audit" / "log.jsonl", "rb"))
        print(f"history entries: {entries} (log {os.path.getsize(tmp / 'vault' / 'audit' / 'log.jsonl') >> 10} KiB)")
        print(f"{'operation':<32} {'best s':>8} {'vs age -d':>10}")
        for name, xs in rows.items():
            print(f"{name:<32} {min(xs):>8.3f} {min(xs) / ref:>10.1f}")
        print(load_line())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
