"""A backup repository on a target: object names, config, index, snapshot objects, locks, local cache."""

from __future__ import annotations

import builtins
import datetime as _dt
import io
import json
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable
from urllib.parse import urlsplit

from vault import clock
from vault.backup.packs import sha256_hex
from vault.errors import ConflictError, FormatError, InputError, IntegrityError, NotFoundError, PluginError, VaultError
from vault.i18n import Message, N_
from vault.store import jsontext, write_atomic
from vault import plugins

if TYPE_CHECKING:
    from vault.plugins import VaultPluginManager

REPO_FORMAT = 1
CONFIG = "config"
DATA, INDEX, SNAPSHOTS, TREES, KEYS, LOCKS = "data/", "index/", "snapshots/", "trees/", "keys/", "locks/"
HISTORY = "history"  # the target's witness record (vault.backup.history)
#: A lock object older than this is left by a run that died; prune then ignores it.
LOCK_STALE = _dt.timedelta(hours=6)
#: Small objects put at once to a target without ``put_many``.
PUTTERS = 8
#: The most bytes an object of each small kind may hold (docs/FORMAT.md §16.1): one larger is
#: damaged or tampered with, and is not read past this bound. Snapshots and indexes grow with the
#: vault's files (about 70 and 90 bytes a file): 256 MiB is some three million of them.
SMALL = {CONFIG: 1 << 20, HISTORY: 1 << 20, LOCKS: 1 << 20, KEYS: 64 << 20, SNAPSHOTS: 256 << 20, INDEX: 256 << 20}
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_GENERATION = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{64}\Z")


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")


def _count(x: Any) -> bool:
    return type(x) is int and x >= 0


def _blob_ids(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(b, str) and _HEX64.match(b) for b in x)


def check_snapshot(snap: dict[str, Any], name: str) -> None:
    """Every field list, prune, verify and restore read, of the type they expect (docs/FORMAT.md
    §16.3): a target's owner can write any JSON under a name that is its hash. ``order``, ``rings``,
    ``keys`` and ``history`` may be absent (snapshots written before them)."""
    try:
        ok = (isinstance(snap["time"], str) and bool(_TIME.match(snap["time"])) and bool(clock.parse_stamp(snap["time"]))
              and type(snap.get("order", 0)) is int and isinstance(snap["tree"], str) and bool(_HEX64.match(snap["tree"]))
              and all(_count(snap[k]) for k in ("files", "bytes", "bytes_new"))
              and _blob_ids(snap["other"]) and isinstance(snap["dossiers"], dict)
              and all(isinstance(d, str) and _blob_ids(bs) for d, bs in snap["dossiers"].items())
              and isinstance(snap.get("rings", {}), dict)
              and all(isinstance(r, str) and isinstance(b, str) and _HEX64.match(b) for r, b in snap.get("rings", {}).items())
              and isinstance(snap.get("keys", {}), dict)
              and all(isinstance(t, str) and isinstance(g, str) and _GENERATION.match(g) for t, g in snap.get("keys", {}).items())
              and ("history" not in snap or (isinstance(snap["history"], dict) and type(snap["history"]["count"]) is int
                                             and isinstance(snap["history"]["head"], str))))
    except (KeyError, TypeError, AttributeError, ValueError):
        ok = False
    if not ok:
        raise IntegrityError(N_("{name}: does not parse"), hint=N_("run 'vault backup verify'"), name=name)


def index_packs(obj: dict[str, Any], name: str) -> dict[str, tuple[int, list[tuple[str, int, int]]]]:
    """An index object's packs, pack id -> (size, [(blob id, offset, length), …]), every field checked
    (a target's owner can write any JSON here); IntegrityError naming the object otherwise."""
    out: dict[str, tuple[int, list[tuple[str, int, int]]]] = {}
    try:
        for pack_id, p in obj["packs"].items():
            if not (isinstance(pack_id, str) and _HEX64.match(pack_id)) or type(p["size"]) is not int \
                    or not isinstance(p["blobs"], list) or p["size"] < 0:
                raise ValueError
            entries = []
            for blob_id, off, ln in p["blobs"]:
                if not (isinstance(blob_id, str) and _HEX64.match(blob_id) and type(off) is int and type(ln) is int
                        and off >= 0 <= ln and off + ln <= p["size"]):
                    raise ValueError
                entries.append((blob_id, off, ln))
            out[pack_id] = (p["size"], entries)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise IntegrityError(N_("{name}: does not parse"), hint=N_("run 'vault backup verify'"), name=name) from None
    return out


def small_bound(name: str) -> int | None:
    """The most bytes the object ``name`` may hold, if it is of a small kind (``SMALL``)."""
    for kind, limit in SMALL.items():
        if name == kind or (kind.endswith("/") and name.startswith(kind)):
            return limit
    return None


def _too_large(name: str, limit: int) -> IntegrityError:
    return IntegrityError(N_("{name}: larger than {mib} MiB, more than any such object holds (damaged or tampered with)"),
                          hint=N_("run 'vault backup verify'"), name=name, mib=limit >> 20)


def data_name(pack_id: str) -> str:
    return f"{DATA}{pack_id[:2]}/{pack_id}"


def open_target(target: Any, *, pm: VaultPluginManager | None = None) -> Any:
    """A target object for ``target``: a URL looked up in the backup-target plugins, or a target as is."""
    if not isinstance(target, str):
        return target
    scheme = urlsplit(target).scheme
    registry = plugins.backup_targets(pm or plugins.get_plugin_manager())
    if scheme not in registry:
        raise InputError(N_("no backup target for URL scheme {value!r}"),
                         hint=N_("use one of: {schemes}"), value=scheme or '(none)', schemes=', '.join(s + '://' for s in sorted(registry)))
    try:
        return registry[scheme](target)
    except PluginError as exc:
        _reraise_cause(exc)
        raise


def _reraise_cause(exc: PluginError) -> None:
    # A target reports a missing object (or, for a built-in, a bad URL) with a VaultError of its own;
    # the plugin wrapper chains it into a PluginError, and the engine needs the original kind back.
    if isinstance(exc.__cause__, NotFoundError) or (
            isinstance(exc.__cause__, VaultError) and "plugin targets " in str(exc)):
        raise exc.__cause__ from None


def cache_root() -> Path:
    """Where a backup job keeps what it can rebuild from the target (``$XDG_CACHE_HOME/vault``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vault" / "backup"


class Repo:
    """The objects of one backup repository on a target (see docs/FORMAT.md, "Backups")."""

    def __init__(self, target: Any, *, cache: Path | None = None, pm: VaultPluginManager | None = None) -> None:
        self.url = target if isinstance(target, str) else getattr(target, "url", repr(target))
        self.target = open_target(target, pm=pm)
        self.cache = cache if cache is not None else cache_root()

    # -- raw object access ------------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PluginError as exc:
            _reraise_cause(exc)
            raise

    def put(self, name: str, data: bytes, *, create_only: bool = True) -> None:
        self.put_stream(name, io.BytesIO(data), create_only=create_only)

    def put_many(self, items: builtins.list[tuple[str, bytes]], *, create_only: bool = True) -> None:
        """Put small objects: durable together where the target offers ``put_many`` (docs/PLUGINS.md),
        else one ``put`` each, several at once (each waits for its own durability)."""
        if not items:
            return
        many = getattr(self.target, "put_many", None)
        if callable(many):
            self._call(many, items, create_only=create_only)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(PUTTERS, len(items))) as pool:
            for f in [pool.submit(self.put, name, data, create_only=create_only) for name, data in items]:
                f.result()

    def put_stream(self, name: str, data: BinaryIO | io.RawIOBase, *, create_only: bool = True) -> None:
        """Put what ``data`` reads, to its end; safe to call from several threads at once."""
        self._call(self.target.put, name, data, create_only=create_only)

    def open(self, name: str) -> BinaryIO:
        """The object as a stream (the caller closes it): for objects too large to hold in memory."""
        return self._call(self.target.get, name)

    def get(self, name: str, *, limit: int | None = None) -> bytes:
        """The object's bytes; one of a small kind (``SMALL``), or with ``limit`` any object, is
        refused past its bound, and not read past it."""
        f = self._call(self.target.get, name)
        try:
            limit = small_bound(name) if limit is None else limit
            if limit is None:
                return f.read()
            seekable = getattr(f, "seekable", None)
            if seekable is not None and seekable():  # (a file: its size says it before any read)
                size = f.seek(0, io.SEEK_END)
                f.seek(0)
                if size > limit:
                    raise _too_large(name, limit)
            data = bytearray()  # (in pieces, and one past the bound: a file may grow while it is read)
            while len(data) <= limit and (got := f.read(min(limit + 1 - len(data), 1 << 20))):
                data += got
            if len(data) > limit:
                raise _too_large(name, limit)
            return bytes(data)
        finally:
            getattr(f, "close", lambda: None)()

    def list(self, prefix: str = "") -> list[str]:
        return list(self._call(self.target.list, prefix))

    def exists(self, name: str) -> bool:
        return bool(self._call(self.target.exists, name))

    def delete(self, name: str) -> None:
        self._call(self.target.delete, name)

    def get_verified(self, name: str) -> bytes:
        """An object named by the SHA-256 of its bytes, checked, through the local cache."""
        oid = name.rsplit("/", 1)[-1]
        cached = self.cache / "objects" / oid
        try:
            data = cached.read_bytes()
            if sha256_hex(data) == oid:
                return data
        except OSError:
            pass
        data = self.get(name)
        if sha256_hex(data) != oid:
            raise IntegrityError(N_("{name}: damaged (its bytes do not hash to its name)"),
                                 hint=N_("run 'vault backup verify' on the target"), name=name)
        try:
            write_atomic(cached, data, sync=False)
        except OSError:
            pass  # the cache is an optimisation only
        return data

    def put_json(self, prefix: str, obj: dict[str, Any]) -> str:
        """Store ``obj`` as canonical JSON named by its SHA-256 under ``prefix``; return the id."""
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        oid = sha256_hex(data)
        self.put(prefix + oid, data)
        return oid

    def get_json(self, name: str) -> dict[str, Any]:
        data = self.get_verified(name)
        try:
            obj = jsontext.loads(data)
        except ValueError:
            raise IntegrityError(N_("{name}: does not parse"), name=name) from None
        if not isinstance(obj, dict) or obj.get("format") != REPO_FORMAT:
            raise FormatError(N_("{name}: unsupported format {format!r}"),
                              hint=N_("upgrade vault"), name=name, format=obj.get('format') if isinstance(obj, dict) else None)
        return obj

    # -- config ----------------------------------------------------------------------------------

    def config(self) -> dict[str, Any] | None:
        try:
            data = self.get(CONFIG)
        except NotFoundError:
            return None
        try:
            cfg = jsontext.loads(data)
        except ValueError:
            raise IntegrityError(N_("{url}: config does not parse (damaged)"), url=self.url) from None
        if not isinstance(cfg, dict) or cfg.get("format") != REPO_FORMAT:
            raise FormatError(N_("{url}: unsupported repository format {format!r} in its config (or config damaged)"),
                              hint=N_("upgrade vault"), url=self.url,
                              format=cfg.get("format") if isinstance(cfg, dict) else None)
        return cfg

    def require_config(self) -> dict[str, Any]:
        cfg = self.config()
        if cfg is None:
            raise NotFoundError(N_("{url}: no vault backup here (no config object)"),
                                hint=N_("check the URL, or run 'vault backup run' first"), url=self.url)
        return cfg

    def init_or_check(self, vault_id: str) -> dict[str, Any]:
        """Create the repository for ``vault_id``, or check that it belongs to it."""
        cfg = self.config()
        if cfg is None:
            cfg = {"format": REPO_FORMAT, "vault_id": vault_id, "created_at": clock.stamp()}
            self.put(CONFIG, json.dumps(cfg, sort_keys=True).encode())
            cfg = self.require_config()  # a concurrent first run may have won: read what is there
        if cfg.get("vault_id") != vault_id:
            raise ConflictError(N_("{url} holds backups of another vault ({vault_id})"),
                                hint=N_("give each vault its own target URL (or prefix)"), url=self.url, vault_id=cfg.get('vault_id'))
        return cfg

    # -- index -----------------------------------------------------------------------------------

    def load_index(self) -> tuple[dict[str, tuple[str, int, int]], dict[str, int], builtins.list[str]]:
        """(blob id -> (pack id, offset, length), pack id -> size, index object names)."""
        blobs: dict[str, tuple[str, int, int]] = {}
        packs: dict[str, int] = {}
        names = self.list(INDEX)
        for name in names:
            for pack_id, (size, entries) in index_packs(self.get_json(name), name).items():
                packs[pack_id] = size
                for blob_id, off, ln in entries:
                    blobs[blob_id] = (pack_id, off, ln)
        return blobs, packs, names

    def write_index(self, packs: dict[str, dict[str, Any]]) -> str | None:
        return self.put_json(INDEX, {"format": REPO_FORMAT, "packs": packs}) if packs else None

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot_ids(self) -> builtins.list[str]:
        return [n[len(SNAPSHOTS):] for n in self.list(SNAPSHOTS) if _HEX64.match(n[len(SNAPSHOTS):])]

    def snapshots(self) -> builtins.list[dict[str, Any]]:
        """Every snapshot, oldest first, each with its ``id``."""
        out = []
        for sid in self.snapshot_ids():
            snap = self.get_json(SNAPSHOTS + sid)
            check_snapshot(snap, SNAPSHOTS + sid)
            snap["id"] = sid
            out.append(snap)
        # ``time`` is to the second (the vault's clock); ``order`` breaks ties between runs in one second.
        return sorted(out, key=lambda s: (s["time"], s.get("order", 0), s["id"]))

    def resolve(self, prefix: str) -> dict[str, Any]:
        """The snapshot whose id starts with ``prefix`` (or ``latest``)."""
        snaps = self.snapshots()
        if prefix == "latest":
            if not snaps:
                raise NotFoundError(N_("{url}: no snapshots"), url=self.url)
            return snaps[-1]
        found = [s for s in snaps if s["id"].startswith(prefix.lower())] if prefix else []
        if len(found) != 1:
            what = Message(N_("no snapshot")) if not found else Message(N_("more than one snapshot"))
            raise NotFoundError(N_("{url}: {what} matches {prefix!r}"), hint=N_("see 'vault backup list'"), url=self.url, what=what, prefix=prefix)
        return found[0]

    # -- locks -----------------------------------------------------------------------------------

    def lock(self, op: str) -> str:
        name = f"{LOCKS}{secrets.token_hex(16)}"
        self.put(name, json.dumps({"op": op, "time": clock.stamp(), "pid": os.getpid(),
                                   "host": socket.gethostname()}).encode(), create_only=False)
        return name

    def unlock(self, name: str) -> None:
        try:
            self.delete(name)
        except NotFoundError:
            pass

    def live_locks(self, *, mine: Iterable[str] = (), op: str | None = None) -> builtins.list[str]:
        """The locks of runs and prunes still alive (of ``op`` only, when given), ``mine`` left out."""
        now, live = clock.now(), []
        for name in self.list(LOCKS):
            if name in set(mine):
                continue
            try:
                rec = jsontext.loads(self.get(name))
                when = clock.parse_stamp(rec["time"])
            except (NotFoundError, ValueError, KeyError, TypeError):
                continue
            if now - when < LOCK_STALE and not _dead_here(rec) and (op is None or rec.get("op") == op):
                live.append(name)
        return live


def _dead_here(rec: dict) -> bool:
    """A lock taken on this host by a process that no longer runs (killed, or the machine stopped):
    it is stale at once, so the next run need not wait for ``LOCK_STALE``."""
    pid = rec.get("pid")
    if rec.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Blob:
    """One vault file as the engine sees it: path, content id, size, mode."""

    path: str
    blob: str
    size: int
    mode: int
