"""Shared pieces of the backup tests: an office with documents, targets that fail or count, an S3 server."""

from __future__ import annotations

import hashlib
import random
import subprocess
import threading
from pathlib import Path

from office import PASSPHRASE, Office, make_office
from vault.office import documents
from vault.store import identity
from vault.archive.vault import Actor, Vault
from vault.store import records
from vault_plugins.targets import FileTarget


def actor(o: Office, who: str = "bob"):
    return o.actor(who)


def add_docs(o: Office, number: str, n: int, size: int, tmp: Path, *, seed: int = 0, act=None) -> list[str]:
    """Add ``n`` random documents of ``size`` bytes to dossier ``number`` in one library call."""
    rnd = random.Random(seed)
    tmp.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        f = tmp / f"doc-{seed}-{i}.bin"
        f.write_bytes(rnd.randbytes(size))
        files.append(f)
    return documents.add(act or actor(o), number, files, category="contract", source="desk", date="2026-03-01",
                         original=True)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under a vault directory and its SHA-256, bar what no snapshot holds (FORMAT §16): the
    lock and work files (``.tmp-*``: temporaries, the work directory and its staging journal)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != ".lock" and not any(x.startswith(".tmp-") for x in p.relative_to(root).parts):
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class CountingTarget(FileTarget):
    """A real directory target that counts puts and can be told to fail after ``fail_after`` of them
    whose names start with ``prefix`` (packs and key-mirror generations are put at the same time)."""

    def __init__(self, url: str, fail_after: int | None = None, prefix: str = "") -> None:
        super().__init__(url)
        self.fail_after, self.prefix = fail_after, prefix
        self.put_names: list[str] = []
        self._lock = threading.Lock()

    def put(self, name, data, *, create_only=False):
        with self._lock:
            if self.fail_after is not None and name.startswith(self.prefix) and \
                    sum(n.startswith(self.prefix) for n in self.put_names) >= self.fail_after:
                raise ConnectionError("connection reset by peer (test)")
            self.put_names.append(name)
        super().put(name, data, create_only=create_only)

    def put_many(self, items, *, create_only=False):
        """Counted, and failing, as that many puts one after another would be."""
        with self._lock:
            allowed = []
            for name, data in items:
                if self.fail_after is not None and name.startswith(self.prefix) and \
                        sum(n.startswith(self.prefix) for n in self.put_names) >= self.fail_after:
                    break
                self.put_names.append(name)
                allowed.append((name, data))
        super().put_many(allowed, create_only=create_only)
        if len(allowed) < len(items):
            raise ConnectionError("connection reset by peer (test)")


def office_with_dossiers(tmp: Path, monkeypatch, dossiers: int = 4) -> tuple[Office, list[str]]:
    o = make_office(tmp, monkeypatch)
    numbers = [o.create(name=f"Customer {i}", contact=f"c{i}@example.org") for i in range(dossiers)]
    return o, numbers


def dossier_id(o: Office, number: str) -> str:
    from vault.archive.manifests import resolve

    return resolve(Vault.open(o.vault_dir), number)


def cut_tail(o: Office, keep: int, who: str = "bob") -> None:
    """As ``who`` (any member, with their own key): keep the first ``keep`` entries of the history
    and re-sign its checkpoint, as if the rest never happened."""
    log = o.vault_dir / "audit" / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)[:keep]
    log.write_bytes(b"".join(lines))
    ident = identity.load_identity(o.ident(who), PASSPHRASE)
    staff = Actor(o.open(), {"name": who, "roles": ["staff"]}, ident)
    cp = staff.sign({"format": 1, "count": keep, "head": hashlib.sha256(lines[-1].rstrip(b"\n")).hexdigest(),
                     "at": o.clock.stamp()})
    records.write_toml(o.vault_dir / "audit" / "checkpoint.toml", cp)


def one_error(r: subprocess.CompletedProcess, *words: str, hint: str = "") -> str:
    """The one ``vault: error:`` line of a command refused with exit 1 — no traceback — holding each
    of ``words``, with a hint that begins with ``hint``."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("vault: error:")]
    for w in words:
        assert w in line, (w, line)
    assert f"vault: hint: {hint}" in r.stderr, r.stderr
    return line
