"""``backup run``: capture a consistent state under the shared lock, then upload what the target lacks."""

from __future__ import annotations

import bisect
import contextlib
import datetime as _dt
import hashlib
import io
import itertools
import json
import os
import threading
import time
import urllib.parse
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

from vault.errors import InputError
from vault.i18n import N_
from vault.archive import authority
import vault.backup.mirror as mirror
import vault.backup.packs as packs
from vault.backup.repo import DATA, SNAPSHOTS, TREES, Blob, Repo, data_name
from vault.backup.capture import Staging, capture
import vault.backup.history as witness
from vault.archive.backuptargets import record_target
from vault.crypto import age
from vault.store import write_atomic

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault
    from vault.plugins import VaultPluginManager

_UPLOADERS = 4
#: Threads reading and hashing files, and how many files they may be ahead of the packer.
_HASHERS = 2
_READ_AHEAD = 16

Progress = Callable[[int], Callable[[int], None]]


@dataclass
class RunReport:
    """What a run did: the ``--json`` summary."""

    snapshot: str
    files: int
    bytes_total: int
    bytes_new: int
    packs_new: int
    keys_mirrored: int
    keys_expired: int
    duration: float
    target: str
    time: str
    keys_missing: list[str] = field(default_factory=list)  # dossier key tables the vault lacks (kept offsite)
    history: dict[str, Any] | None = None  # the checkpoint recorded at the target: count, head

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _FileCache:
    """path -> (device, inode, size, mtime) -> blob id, so an unchanged file is not read again.

    Sound because the vault never rewrites a file in place: new content is a new inode.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.old = json.loads(path.read_text())
        except (OSError, ValueError):
            self.old = {}
        self.new: dict[str, list] = {}

    def lookup(self, rel: str, stat: os.stat_result) -> str | None:
        key = [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns]
        hit = self.old.get(rel)
        return hit[4] if isinstance(hit, list) and hit[:4] == key else None

    def store(self, rel: str, stat: os.stat_result, blob: str) -> None:
        self.new[rel] = [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, blob]

    def save(self) -> None:
        with contextlib.suppress(OSError):
            write_atomic(self.path, json.dumps(self.new, separators=(",", ":")).encode(), sync=False)


def _hash_file(path: Path) -> tuple[str, bytes | None, Any]:
    """SHA-256 of a file, read once: (blob id, its bytes when small enough to pack, else the hash state).

    A large file is a pack of its own whose bytes start with the file's, so the pack's hash goes on
    from a copy of the state the blob's hash ended with: the file is not read a second time for it.
    """
    with open(path, "rb") as f:
        data = f.read(packs.SMALL_BLOB)
        if len(data) < packs.SMALL_BLOB:
            return hashlib.sha256(data).hexdigest(), data, None
        h = hashlib.sha256(data)
        del data
        while chunk := f.read(1 << 20):
            h.update(chunk)
        return h.hexdigest(), None, h.copy()


class _Chain(io.RawIOBase):
    """A file followed by some bytes, read as one stream (a large blob's pack without loading it)."""

    def __init__(self, f: io.BufferedReader, tail: bytes) -> None:
        self.f, self.tail = f, tail

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any, /) -> int:
        n = self.f.readinto(b)
        if n:
            return n
        n = min(len(b), len(self.tail))
        b[:n], self.tail = self.tail[:n], self.tail[n:]
        return n


class _Parts(io.RawIOBase):
    """A pack's parts (blobs, header, trailer) read as one seekable stream without joining them first.

    Like any raw stream, ``read(n)`` may return fewer than ``n`` bytes (``b""`` only at the end): it
    hands out a whole part as is when it fits, so a target that writes what it reads copies each
    blob once, into the kernel. ``read()`` gives the whole rest.
    """

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.starts = list(itertools.accumulate(map(len, parts), initial=0))  # last: the total size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.starts[-1]}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self.pos = base + offset
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        total = self.starts[-1]
        if self.pos >= total:
            return b""
        if n is None or n < 0:
            out = b"".join(self.parts) if self.pos == 0 else b"".join(self._rest())
            self.pos = total
            return out
        if n == 0:
            return b""
        # A raw stream may return fewer bytes than asked: at most the rest of the current part.
        i = bisect.bisect_right(self.starts, self.pos) - 1
        off = self.pos - self.starts[i]
        part = self.parts[i]
        out = part if off == 0 and len(part) <= n else part[off : off + n]
        self.pos += len(out)
        return out

    def _rest(self) -> Iterator[bytes]:
        i = bisect.bisect_right(self.starts, self.pos) - 1
        yield self.parts[i][self.pos - self.starts[i]:]
        yield from self.parts[i + 1:]

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b: Any, /) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Steps:
    """Progress steps that may arrive before the bar exists (uploads start while files are still hashed)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.early = 0
        self.step: Callable[[int], None] | None = None

    def __call__(self, n: int) -> None:
        with self.lock:
            if self.step is None:
                self.early += n
                return
            self.step(n)

    def start(self, step: Callable[[int], None]) -> None:
        with self.lock:
            self.step = step
            if self.early:
                step(self.early)


class _Uploader:
    """Packs new blobs and uploads packs on a few threads; remembers what it uploaded for the index.

    A full pack's hashing and writing run on the upload threads (hashlib and file writes release the
    GIL), so they overlap with reading and hashing the next files.
    """

    def __init__(self, repo: Repo, step: Callable[[int], None]) -> None:
        self.repo, self.step = repo, step
        self.pool = ThreadPoolExecutor(_UPLOADERS)
        self.pending: deque[Future] = deque()
        self.builder = packs.PackBuilder()
        self.packs: dict[str, dict[str, Any]] = {}
        self.bytes_new = 0

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > _UPLOADERS * 2:
            self.pending.popleft().result()
        while self.pending and self.pending[0].done():
            self.pending.popleft().result()  # fail early: an upload error stops the run

    def add_small(self, blob: str, data: bytes) -> None:
        self.builder.add(blob, data)
        self.bytes_new += len(data)
        if self.builder.size >= packs.PACK_TARGET:
            self.flush()

    def flush(self) -> None:
        if not len(self.builder):
            return
        builder, self.builder = self.builder, packs.PackBuilder()
        self._submit(self._put_pack, builder)

    def _put_pack(self, builder: packs.PackBuilder) -> None:
        pack_id, parts, entries = builder.finish_parts()
        size = sum(map(len, parts))
        self.repo.put_stream(data_name(pack_id), _Parts(parts), size)
        self.packs[pack_id] = {"size": size, "blobs": entries}
        self.step(size)

    def add_large(self, blob: str, path: Path, size: int, state: Any) -> None:
        tail_header = json.dumps({"format": 1, "blobs": [[blob, 0, size]]}, separators=(",", ":")).encode()
        tail = tail_header + packs._TRAILER.pack(len(tail_header))
        state.update(tail)
        pack_id = state.hexdigest()
        self.bytes_new += size
        self._submit(self._put_large, pack_id, path, tail, [[blob, 0, size]], size + len(tail))

    def _put_large(self, pack_id: str, path: Path, tail: bytes, entries: list, size: int) -> None:
        with open(path, "rb") as f:
            self.repo.put_stream(data_name(pack_id), io.BufferedReader(_Chain(f, tail), 1 << 20), size)
        self.packs[pack_id] = {"size": size, "blobs": entries}
        self.step(size)

    def finish(self) -> None:
        try:
            self.flush()
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _hashed(paths: list[Path | None]) -> Generator[tuple[str, bytes | None, Any] | None, None, None]:
    """``_hash_file`` of each path (``None`` passes through), in order, a few files read ahead on threads."""
    with ThreadPoolExecutor(_HASHERS) as pool:
        ahead: deque[Future | None] = deque()
        it = iter(paths)
        try:
            for path in it:
                ahead.append(pool.submit(_hash_file, path) if path is not None else None)
                if len(ahead) >= _READ_AHEAD:
                    f = ahead.popleft()
                    yield f.result() if f is not None else None
            while ahead:
                f = ahead.popleft()
                yield f.result() if f is not None else None
        finally:
            for f in ahead:
                if f is not None:
                    f.cancel()


def _adopt_orphans(repo: Repo, known: dict, indexed_packs: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Packs an interrupted run uploaded but never indexed: read their trailers so nothing is sent twice."""
    adopted: dict[str, dict[str, Any]] = {}
    for name in repo.list(DATA):
        pack_id = name.rsplit("/", 1)[-1]
        if pack_id in indexed_packs or name != data_name(pack_id):
            continue
        data = repo.get(name)
        try:
            entries = packs.read_trailer(pack_id, data)
        except Exception:
            continue  # damaged: not trusted, its blobs are uploaded again
        adopted[pack_id] = {"size": len(data), "blobs": entries}
        for blob, off, ln in entries:
            known.setdefault(blob, (pack_id, off, ln))
    return adopted


def _refuse_inside(v: Vault, target: Any) -> None:
    """A directory target inside the vault would back the vault up into itself (and every later
    snapshot would hold the previous ones)."""
    if isinstance(target, str) and target.startswith("file:"):
        path = Path(os.path.realpath(urllib.parse.urlparse(target).path or "/"))
        root = Path(os.path.realpath(v.root))
        if path == root or path.is_relative_to(root):
            raise InputError(N_("the backup target lies inside the vault directory"),
                             hint=N_("back up to another disk or host"))


def run(v: Vault, target: Any, *, key_window: _dt.timedelta = mirror.DEFAULT_WINDOW, cache: Path | None = None,
        progress: Progress | None = None, pm: VaultPluginManager | None = None,
        actor: Actor | Callable[[], Actor] | None = None, restored_from: str | None = None) -> RunReport:
    """Back the vault up to ``target`` (URL or target object); needs no identity (see docs/FORMAT.md),
    but with ``actor`` a new target is registered in the history (``archive.backuptargets``).

    Refuses a vault whose history does not extend the checkpoint the target recorded (a cut or
    rolled-back vault), unless ``restored_from`` names the snapshot it was restored from on purpose.
    """
    started = time.monotonic()
    _refuse_inside(v, target)
    repo = Repo(target, cache=cache, pm=pm)
    repo.init_or_check(v.config["id"])
    record_target(v, repo.url, actor)  # first, so that a destruction can reach whatever arrives there
    lock = repo.lock("backup")
    staging = None
    try:
        staging = capture(v)
        hist = witness.History.of_file(dict(staging.files).get(witness.LOG))
        now = v.clock.now()
        rollback = witness.check(repo, hist, restored_from, now=now)  # before anything is uploaded
        point = hist.point()
        rep = _upload(v, repo, staging, now=now, key_window=key_window, progress=progress, point=point)
        witness.record(repo, v.config["id"], point, rep.snapshot, rollback, now=now)
    finally:
        if staging is not None:
            staging.remove(v)
        repo.unlock(lock)
    rep.duration = round(time.monotonic() - started, 3)
    return rep


def _generations_of(repo: Repo, tables: dict[str, bytes]) -> dict[str, str]:
    """``{table: "<stamp>-<hash>"}``: the mirrored generation holding each table's bytes now."""
    gens = mirror.generations(repo)
    out = {}
    for table, data in sorted(tables.items()):
        h = packs.sha256_hex(data)
        match = [g for g in gens.get(table, []) if g.sha256 == h]
        if match:
            out[table] = f"{match[-1].stamp}-{h}"
    return out


def _upload(v: Vault, repo: Repo, staging: Staging, *, now: _dt.datetime, key_window: _dt.timedelta,
            progress: Progress | None, point: witness.Point) -> RunReport:
    fcache = _FileCache(repo.cache / v.config["id"] / "files.json")
    known, indexed_packs, _ = repo.load_index()
    adopted = _adopt_orphans(repo, known, indexed_packs)

    key_tables: dict[str, bytes] = {}
    files: list[tuple[str, Path, os.stat_result, str | None]] = []
    for rel, path in staging.files:
        if rel.startswith("keys/") and rel.count("/") == 1:
            key_tables[rel[len("keys/"):]] = path.read_bytes()
            continue
        st = staging.sources.get(rel) or path.stat()
        files.append((rel, path, st, fcache.lookup(rel, st)))

    # One pass: each file not in the cache is read once (on threads, a few ahead) and hashed, and a new
    # blob goes straight into a pack, whose hashing and upload overlap with the files that follow.
    # The progress bar needs the total of new bytes, known only once every file is hashed: steps
    # made before then are counted and shown when the bar starts.
    steps = _Steps()
    up = _Uploader(repo, steps)
    entries: list[Blob] = []
    seen: set[str] = set()
    try:
        with contextlib.closing(_hashed([path if blob is None else None for _, path, _, blob in files])) as hashed:
            for (rel, path, st, blob), got in zip(files, hashed):
                data = state = None
                if got is not None:
                    blob, data, state = got
                assert blob is not None  # a file without a cached hash was hashed just now
                fcache.store(rel, st, blob)
                b = Blob(rel, blob, st.st_size, st.st_mode & 0o777)
                entries.append(b)
                if blob in known or blob in seen:
                    continue
                seen.add(blob)
                if b.size >= packs.SMALL_BLOB:
                    if state is None:  # cached, but this repository lacks it: its pack hash needs a read
                        _, _, state = _hash_file(path)
                    up.add_large(blob, path, b.size, state)
                else:
                    up.add_small(blob, data if data is not None else path.read_bytes())
        steps.start(progress(up.bytes_new) if progress else (lambda n: None))
    finally:
        up.finish()
    # Every file's bytes are read (key tables at the start): the staging's links can go.
    staging.remove_soon(v)
    repo.write_index({**adopted, **up.packs})

    # A dossier's table leaves the vault only by its destruction; one missing otherwise keeps its
    # last mirrored generation, the only copy left of the keys that open its records.
    live = {f"{d}.age" for d, f in authority.state(v)["dossiers"].items() if not f["destroyed"]}
    keys = mirror.sync(repo, key_tables, now=now, window=key_window, keep=live)

    # The tree names paths, so it is encrypted to the rings of the state captured: a restore needs
    # a ring member, the backup host needs nothing secret.
    tree = {"format": 1, "vault_id": v.config["id"],
            "files": [[b.path, b.blob, b.size, b.mode] for b in entries],
            "keys": {f"keys/{t}": packs.sha256_hex(d) for t, d in sorted(key_tables.items())}}
    tree_blob = age.encrypt_bytes(json.dumps(tree, separators=(",", ":")).encode(),
                                  staging.recipients)
    tree_id = packs.sha256_hex(tree_blob)
    repo.put(TREES + tree_id, tree_blob)

    dossiers: dict[str, set[str]] = {}
    other: set[str] = set()
    rings = {}
    for b in entries:
        parts = b.path.split("/")
        if parts[0] == "dossiers" and len(parts) > 2:
            dossiers.setdefault(parts[1], set()).add(b.blob)
        else:
            other.add(b.blob)
        if parts[0] == "rings" and len(parts) == 2 and parts[1].endswith(".age"):
            rings[parts[1][:-4]] = b.blob
    snap = {"format": 1, "vault_id": v.config["id"], "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "order": time.time_ns(), "tree": tree_id, "files": len(entries), "bytes": sum(b.size for b in entries),
            "bytes_new": up.bytes_new, "rings": rings, "other": sorted(other),
            "dossiers": {d: sorted(bs) for d, bs in sorted(dossiers.items())}, "history": point.as_dict(),
            # The key-mirror generation of each table this state needs: lets a keyless verify name
            # a generation deleted from the target (no secret: generation names are listed anyway).
            "keys": _generations_of(repo, key_tables)}
    sid = repo.put_json(SNAPSHOTS, snap)  # last: a snapshot is listed only once all it names is there
    fcache.save()
    return RunReport(snapshot=sid, files=len(entries), bytes_total=snap["bytes"], bytes_new=up.bytes_new,
                     packs_new=len(up.packs), keys_mirrored=len(keys.uploaded), keys_expired=len(keys.expired),
                     duration=0.0, target=repo.url, time=snap["time"], keys_missing=keys.missing,
                     history=point.as_dict())

