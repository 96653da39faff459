"""Benchmark: the portal under concurrent uploads — throughput and the portal process's peak memory.

Run ``python bench/bench_portal.py [--size-mib 100] [--concurrency 4] [--sizes-mib 10,100] [--dir /tmp]``.
For each size it starts ``vault portal serve`` on 127.0.0.1, sends ``--concurrency`` uploads of that
size at once through invitation links (one file each, multipart, from this process's threads), and
reads the portal's peak RSS (VmHWM) from /proc. The reference in the same run is ``age -e`` of the
same bytes, the same number of processes at once. Not a test: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from bench_age import TIME, make_input, run, sha256  # noqa: E402

from vault.archive import intakekey  # noqa: E402
from vault.archive.vault import Vault  # noqa: E402
from vault.crypto import age  # noqa: E402
from vault.office import intake, invitations  # noqa: E402
from vault.office.dossier import create  # noqa: E402
from vault.store import identity  # noqa: E402

MIB = 1024 * 1024
BOUNDARY = "benchboundary"


def build_vault(root: Path):
    identity.SCRYPT_WORK_FACTOR = 10  # bench seam: the identity is never unlocked from disk here
    ident = identity.MemberIdentity.generate()
    v = Vault.init(root / "vault", supervisor="alice", key=ident.public)
    actor = v.act_as(ident)
    number = create(actor, customer_type="enterprise", business="network-services", dept="sales",
                    profile={"name": "Bench Customer"})
    return v, actor, number


def start_portal(vault_dir: Path, root: Path, concurrency: int, size_mib: int):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(VAULT_DIR=str(vault_dir), PYTHONPATH=str(REPO), TMPDIR=str(root))
    max_mb = size_mib * MIB // 1_000_000 + 2
    proc = subprocess.Popen([sys.executable, "-m", "vault", "portal", "serve", "--listen", f"127.0.0.1:{port}",
                             "--organisation", "Bench", "--max-file-mb", str(max_mb), "--max-submission-mb",
                             str(max_mb + 1), "--max-uploads", str(concurrency), "--rate-limit", "1000/60"],
                            env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the portal did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            out[line.split(":")[0]] = int(line.split()[1]) // 1024  # MiB
    return out


def _all_at_once(n: int, job) -> float:
    """Seconds until ``job(0)`` … ``job(n - 1)``, each in its own thread and started together, are done."""
    threads = [threading.Thread(target=job, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def upload(link: str, src: Path, results: list, i: int) -> None:
    u = urlsplit(link)
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"c1\"\r\n\r\nother\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"d1\"\r\n\r\n2026-01-01\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f1\"; filename=\"bench.bin\"\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body():
        yield head
        with open(src, "rb") as f:
            while block := f.read(MIB):
                yield block
        yield tail

    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    c.request("POST", u.path, body=body(), headers={
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(head) + src.stat().st_size + len(tail))})
    r = c.getresponse()
    results[i] = (r.status, r.read())
    c.close()


def bench_portal(root: Path, src: Path, size_mib: int, concurrency: int) -> dict:
    v, actor, number = build_vault(root)
    links = []
    for _ in range(concurrency):
        inv = invitations.issue(actor, number, expires="1h", uses=1)
        links.append(f"/i/{inv['id']}/{inv['token']}")
    proc, base = start_portal(v.root, root, concurrency, size_mib)
    try:
        idle = _status(proc.pid)["VmRSS"]
        results: list = [None] * concurrency
        seconds = _all_at_once(concurrency, lambda i: upload(base + links[i], src, results, i))
        peak = _status(proc.pid)["VmHWM"]
    finally:
        proc.terminate()
        proc.wait()
    bad = [r[0] for r in results if r is None or r[0] != 200]
    if bad:
        raise SystemExit(f"uploads failed: {bad}")
    # Check before reporting: what the intake holds decrypts to the input's bytes.
    rows = intake.pending(v)
    idents = intakekey.identities(actor)
    want = sha256(src)
    for row in rows[:1]:
        h = hashlib.sha256()

        class _Hash:
            def write(self, b, h=h):
                h.update(b)
                return len(b)

        with open(v.root / "intake" / f"{row['id']}.age", "rb") as f:
            age.decrypt(f, _Hash(), idents)
        if h.hexdigest() != want:
            raise SystemExit("a submission does not decrypt to the uploaded bytes")
    if len(rows) != concurrency:
        raise SystemExit(f"{len(rows)} submissions filed, expected {concurrency}")
    return {"seconds": seconds, "idle": idle, "peak": peak}


def bench_age(root: Path, src: Path, concurrency: int) -> dict:
    secret = age.generate_identity("x25519")
    rcpt = age.recipient_of(secret)
    samples: list = [None] * concurrency

    def one(i: int) -> None:
        samples[i] = run(["age", "-e", "-r", rcpt, "-o", str(root / f"age-{i}.age"), str(src)])

    seconds = _all_at_once(concurrency, one)
    for i in range(concurrency):
        os.unlink(root / f"age-{i}.age")
    return {"seconds": seconds, "peak": max(s.rss_mib for s in samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", default="10,100", help="upload sizes to compare, MiB (default 10,100)")
    parser.add_argument("--concurrency", type=int, default=4, help="uploads at once (default 4)")
    parser.add_argument("--dir", default=None, help="parent of the temporary directory (default /tmp)")
    opts = parser.parse_args()
    if not shutil.which("age"):
        raise SystemExit("needs the age CLI (apt-get install age)")
    sizes = [int(s) for s in opts.sizes_mib.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-portal-", dir=opts.dir))
    rows = []
    try:
        for size in sizes:
            src = work / f"input-{size}.bin"
            make_input(src, size)
            subprocess.run(["sync"], check=False)
            p = bench_portal(work / f"portal-{size}", src, size, opts.concurrency)
            a = bench_age(work, src, opts.concurrency)
            total = size * opts.concurrency / 1024
            rows.append((size, p, a, total))
            shutil.rmtree(work / f"portal-{size}")
            src.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{opts.concurrency} uploads at once; portal = vault portal serve (mlkem768x25519 intake key), "
          f"age = {opts.concurrency} x age -e -r (X25519) of the same bytes")
    print(f"{'size':>8} {'portal s':>9} {'GiB/s':>7} {'age s':>7} {'GiB/s':>7} {'s ratio':>8}"
          f" {'portal idle MiB':>16} {'portal peak MiB':>16} {'age peak MiB':>13}")
    for size, p, a, total in rows:
        print(f"{size:>5}MiB {p['seconds']:>9.2f} {total / p['seconds']:>7.2f} {a['seconds']:>7.2f}"
              f" {total / a['seconds']:>7.2f} {p['seconds'] / a['seconds']:>8.2f} {p['idle']:>16} {p['peak']:>16}"
              f" {a['peak']:>13.1f}")
    print(f"peak RSS measured: portal from /proc VmHWM (one process, all uploads); age per process"
          f"{' with GNU time' if TIME else ''}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (the uploading client runs here too)")


if __name__ == "__main__":
    main()
