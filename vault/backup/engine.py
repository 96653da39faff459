"""``backup run``: capture a consistent state under the shared lock, then upload what the target lacks."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from vault.errors import ConflictError, InputError, IntegrityError
from vault.i18n import N_
from vault.archive import authority
import vault.backup.mirror as mirror
import vault.backup.packs as packs
import vault.backup.upload as upload
from vault.backup.repo import _HEX64, DATA, SNAPSHOTS, TREES, Blob, Repo, data_name
from vault.backup.capture import Staging, capture
import vault.backup.history as witness
from vault.archive.backuptargets import record_target
from vault.crypto import age
from vault.store import write_atomic
from vault.store import jsontext

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault
    from vault.plugins import VaultPluginManager

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
    not_regular: list[str] = field(default_factory=list)  # symbolic links, FIFOs, devices: not backed up
    history: dict[str, Any] | None = None  # the checkpoint recorded at the target: count, head

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _FileCache:
    """path -> (device, inode, size, mtime) -> blob id, so an unchanged file is not read again (nor
    linked into the staging: ``capture``).

    Sound because the vault never rewrites a file in place: new content is a new inode.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.old = _read_map(path)
        self.new: dict[str, list] = {}

    def lookup(self, rel: str, stat: os.stat_result) -> str | None:
        hit = self.old.get(rel)
        if type(hit) is list and len(hit) == 5 and hit[3] == stat.st_mtime_ns and hit[1] == stat.st_ino \
                and hit[2] == stat.st_size and hit[0] == stat.st_dev and type(hit[4]) is str:
            return hit[4]
        return None

    def store(self, rel: str, stat: os.stat_result, blob: str) -> None:
        if self.lookup(rel, stat) == blob:
            self.new[rel] = self.old[rel]  # (the same entry: nothing to compare or build again)
        else:
            self.new[rel] = [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, blob]

    def save(self) -> None:
        if self.new != self.old:  # (nothing changed: the file holds it already)
            _write_map(self.path, self.new)


def _read_map(path: Path) -> dict[str, Any]:
    """A client cache file's JSON object; {} where it is missing or damaged (read past, never believed)."""
    try:
        data = jsontext.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_map(path: Path, data: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only costs the next run some work."""
    with contextlib.suppress(OSError):
        write_atomic(path, json.dumps(data, separators=(",", ":")).encode(), sync=False)


#: Targets whose last tree the client remembers.
_TREE_URLS = 64


class _TreeCache:
    """The tree last put to each target (by URL), under a digest of its plaintext and recipients: a
    run that captured the same state (nothing changed) names that tree again instead of encrypting
    and putting a copy that differs only in its random file key. Trusted as the file cache is: a
    client's own file, and the tree is named only if this target still holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = _read_map(path)

    @staticmethod
    def digest(plain: bytes, recipients: list) -> str:
        h = hashlib.sha256(len(plain).to_bytes(8, "big") + plain)
        for r in recipients:
            h.update(str(r).encode() + b"\n")
        return h.hexdigest()

    def get(self, url: str, digest: str) -> str | None:
        hit = self.data.get(url)
        if isinstance(hit, list) and len(hit) == 2 and hit[0] == digest and isinstance(hit[1], str) \
                and _HEX64.match(hit[1]):
            return hit[1]
        return None

    def save(self, url: str, digest: str, tree_id: str) -> None:
        self.data.pop(url, None)
        self.data[url] = [digest, tree_id]
        for old in list(self.data)[:-_TREE_URLS]:  # (the targets used last)
            del self.data[old]
        _write_map(self.path, self.data)


#: The largest pack an interrupted run left that the next run reads to adopt it (it is held whole);
#: a larger one — a large file's own pack, or one a target's owner serves without end — is passed
#: by and its files are uploaded again.
ADOPT_MAX = 64 << 20


def _adopt_orphans(repo: Repo, known: dict, indexed_packs: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Packs an interrupted run uploaded but never indexed: read their trailers so nothing is sent twice."""
    adopted: dict[str, dict[str, Any]] = {}
    for name in repo.list(DATA):
        pack_id = name.rsplit("/", 1)[-1]
        if pack_id in indexed_packs or name != data_name(pack_id):
            continue
        try:
            data = repo.get(name, limit=ADOPT_MAX)
        except IntegrityError:
            continue  # larger than a pack worth adopting: its blobs are uploaded again
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
        # A prune deletes what no snapshot it keeps names: a run beside it could name a pack or a
        # tree it deletes. Each takes its lock before looking for the other's, so one of them sees it.
        if repo.live_locks(mine=[lock], op="prune"):
            raise ConflictError(N_("{url}: a prune is running on this target"),
                                hint=N_("retry when it has finished (a lock left by a dead prune expires after 6 hours)"),
                                url=repo.url)
        fcache = _FileCache(repo.cache / v.config["id"] / "files.json")
        known, indexed_packs, _ = repo.load_index()
        adopted = _adopt_orphans(repo, known, indexed_packs)
        # A file this target holds by its status is neither linked nor read (``capture``).
        held: dict[str, str] = {}

        def unchanged(rel: str, st: os.stat_result) -> bool:
            blob = fcache.lookup(rel, st)
            if blob is None or blob not in known:
                return False
            held[rel] = blob
            return True

        staging = capture(v, unchanged=unchanged)
        hist = witness.History.of_file(staging.path(witness.LOG))
        now = v.clock.now()
        rollback = witness.check(repo, hist, restored_from, now=now)  # before anything is uploaded
        point = hist.point()
        rep = _upload(v, repo, staging, fcache, known, held, adopted, now=now, key_window=key_window, progress=progress,
                      point=point)
        witness.record(repo, v.config["id"], point, rep.snapshot, rollback, now=now)
    finally:
        if staging is not None:
            staging.remove(v)
        repo.unlock(lock)
    rep.duration = round(time.monotonic() - started, 3)
    return rep


def _upload(v: Vault, repo: Repo, staging: Staging, fcache: _FileCache, known: dict, held: dict[str, str],
            adopted: dict, *, now: _dt.datetime,
            key_window: _dt.timedelta, progress: Progress | None, point: witness.Point) -> RunReport:
    key_tables = staging.keys
    files: list[tuple[str, str | None, os.stat_result, str | None]] = []
    for rel, path in staging.files:
        # A file is read unless the cache knows its blob and this target holds it: one left unlinked
        # (``held``), or one copied (appended in place, or where a link failed) whose original's
        # status did not change since the cache was written. The cache is the vault's, not the target's.
        if path is None:
            files.append((rel, None, staging.sources[rel], held[rel]))
        elif rel in staging.sources:
            st = staging.sources[rel]
            blob = fcache.lookup(rel, st)
            files.append((rel, path, st, blob if blob in known else None))
        else:
            files.append((rel, path, os.stat(path), None))

    # A dossier's table leaves the vault only by its destruction; one missing otherwise keeps its
    # last mirrored generation, the only copy left of the keys that open its records.
    live = {f"{d}.age" for d, f in authority.state(v)["dossiers"].items() if not f["destroyed"]}
    # A large pass forks its workers first: a process forks only while it has no other thread.
    workers = upload.Workers.start(repo, known, [(path, st.st_size) for _, path, st, blob in files
                                                 if blob is None and path is not None])
    try:
        with ThreadPoolExecutor(1) as side:
            # The key mirror (a small object per changed table, a first run's thousand of them waiting
            # on the disk together) runs beside the pass over the files, which keeps the CPUs busy;
            # both are done before the index, and the snapshot still comes last.
            mirroring = side.submit(mirror.sync, repo, key_tables, now=now, window=key_window, keep=live)
            entries, packs_new, bytes_new = _pass(repo, files, known, fcache, progress, workers)
            # Every file's bytes are read (key tables at the start): the staging's links can go.
            staging.remove_soon(v)
            keys = mirroring.result()
    finally:
        if workers is not None:
            workers.shutdown()
    repo.write_index({**adopted, **packs_new})
    rep = _finish(v, repo, staging, entries, key_tables, keys, packs_new, bytes_new, now=now, point=point,
                  trees=_TreeCache(fcache.path.with_name("trees.json")))
    fcache.save()
    return rep


def _finish(v: Vault, repo: Repo, staging: Staging, entries: list[Blob], key_tables: dict[str, bytes],
            keys: mirror.MirrorReport, packs_new: dict[str, Any], bytes_new: int, *, now: _dt.datetime,
            point: witness.Point, trees: _TreeCache) -> RunReport:
    """The tree, then the snapshot (last: a snapshot is listed only once all it names is there)."""
    # The tree names paths, so it is encrypted to the rings of the state captured: a restore needs
    # a ring member, the backup host needs nothing secret.
    tree = {"format": 1, "vault_id": v.config["id"],
            "files": [[b.path, b.blob, b.size, b.mode] for b in entries],
            "keys": {f"keys/{t}": packs.sha256_hex(d) for t, d in sorted(key_tables.items())}}
    plain = json.dumps(tree, separators=(",", ":")).encode()
    digest = trees.digest(plain, staging.recipients)
    # (a target given as an object without a URL is known by no name that lasts: nothing remembered)
    url = repo.url if isinstance(repo.url, str) and "://" in repo.url else None
    tree_id = trees.get(url, digest) if url else None
    if tree_id is None or not repo.exists(TREES + tree_id):
        tree_blob = age.encrypt_bytes(plain, staging.recipients)
        tree_id = packs.sha256_hex(tree_blob)
        repo.put(TREES + tree_id, tree_blob)
        if url:
            trees.save(url, digest, tree_id)

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
            "bytes_new": bytes_new, "rings": rings, "other": sorted(other),
            "dossiers": {d: sorted(bs) for d, bs in sorted(dossiers.items())}, "history": point.as_dict(),
            # The key-mirror generation of each table this state needs: lets a keyless verify name
            # a generation deleted from the target (no secret: generation names are listed anyway).
            "keys": {t: f"{g.stamp}-{g.sha256}" for t, g in sorted(keys.holding.items())}}
    sid = repo.put_json(SNAPSHOTS, snap)  # last: a snapshot is listed only once all it names is there
    if not repo.exists(SNAPSHOTS + sid):  # a store that answers a conditional put and keeps nothing
        raise IntegrityError(N_("{name}: the target answered its put but does not hold it"), name=SNAPSHOTS + sid,
                             hint=N_("check the target's conditional writes (If-None-Match), then run 'vault backup verify'"))
    return RunReport(snapshot=sid, files=len(entries), bytes_total=snap["bytes"], bytes_new=bytes_new,
                     packs_new=len(packs_new), keys_mirrored=len(keys.uploaded), keys_expired=len(keys.expired),
                     duration=0.0, target=repo.url, time=snap["time"], keys_missing=keys.missing,
                     not_regular=sorted(staging.irregular),
                     history=point.as_dict())


def _pass(repo: Repo, files: list[tuple[str, str | None, os.stat_result, str | None]], known: dict,
          fcache: _FileCache, progress: Progress | None,
          workers: upload.Workers | None) -> tuple[list[Blob], dict[str, dict[str, Any]], int]:
    """One pass: each file not in the cache is read once and hashed, and a new blob goes straight
    into a pack, whose upload overlaps with the files that follow (its id is its header's hash: the
    blobs are not hashed again); (the files' blobs, the packs put, the new bytes).

    On ``workers`` (a large pass), each reads and packs its shares of the files, and the bar counts
    the bytes read. On threads, a few files are read ahead while this thread packs; the bar counts
    the new bytes put, a total known only once every file is hashed: steps made before then are
    counted and shown when the bar starts.
    """
    todo = [(path, st.st_size) if blob is None and path is not None else None for _, path, st, blob in files]
    if workers is not None:
        ids = workers.blobs(progress(sum(f[1] for f in todo if f is not None)) if progress else (lambda n: None))
        blobs = [next(ids) if file is not None else blob for (_, _, _, blob), file in zip(files, todo)]
        return _entries(files, blobs, fcache), workers.packs, workers.bytes_new
    steps = upload.Steps()
    up = upload.Uploader(repo, steps, known)
    blobs = [blob for _, _, _, blob in files]
    read = [i for i, file in enumerate(todo) if file is not None]
    try:
        with contextlib.closing(upload.hashed([todo[i] for i in read])) as hashed:
            for i, got in zip(read, hashed):
                _, path, st, _ = files[i]
                assert got is not None and path is not None
                blobs[i], data = got
                up.add(got[0], path, st.st_size, data)
        steps.start(progress(up.bytes_new) if progress else (lambda n: None))
    finally:
        up.finish()
    return _entries(files, blobs, fcache), up.packs, up.bytes_new


def _entries(files: list[tuple[str, str | None, os.stat_result, str | None]], blobs: list[str | None],
             fcache: _FileCache) -> list[Blob]:
    """Each file's tree entry, its blob remembered in the cache under the file's status."""
    out = []
    for (rel, _, st, _), blob in zip(files, blobs):
        assert blob is not None  # a file without a cached hash was hashed just now
        fcache.store(rel, st, blob)
        out.append(Blob(rel, blob, st.st_size, st.st_mode & 0o777))
    return out
