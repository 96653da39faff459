"""What this client verified, by file status (documents: the status → the ciphertext hash), outside the vault.

A keyless ``vault check`` hashes every document's ciphertext against its manifest. Most of those
bytes are the same from one check to the next, so each client remembers, for every document whose
hash it verified, the file's status as it was read — ``(st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)`` — with the hash and key reference it matched. A later check takes the hash from
here only when the status is exactly the same (the reasoning of git's index): whoever writes the
vault directory can set a file's mtime back (``utime``), but not its ctime, which the kernel sets
to its own clock on every write, rename, link or ``utime``; a file replaced by another is another
inode. A status whose mtime or ctime is less than ``_RACY_NS`` old when it was read is not
remembered, since a write within the same clock tick would leave it unchanged. The same holds for
records and manifests (with what a keyless check reads of a manifest), for the history's lines
whose signature it verified, for whole dossiers found exactly as they were settled (``checkdocs``),
and for the checkpoint the history was last replayed to (``replaypoint``).

The file lives in this client's state directory (``witness.state_dir``: 0600 in a 0700 directory),
which the vault's writer cannot write, and it names the vault it is for: one that does not parse,
names another vault or directory, or has another format is ignored — never trusted, never an
error. ``check --read-data`` reads every byte regardless.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault.archive import witness
from vault.store import make_dir, unconfined, write_atomic
from vault.store import jsontext

if TYPE_CHECKING:
    from vault.archive.handle import Vault

FORMAT = 3
NAME = "verified.json"

# A status read less than this after the file's last change is not remembered: a change in the same
# timestamp tick (coarse kernel clocks, 1 s or 2 s on some file systems) would not show in it.
_RACY_NS = 2_000_000_000

Status = tuple[int, int, int, int, int]


def status(st: os.stat_result) -> Status:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=64)
def key_id(key: str) -> str:
    """A member key as the cache names it (keys with a post-quantum part are kilobytes long)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _path(v: Vault) -> Path:
    return witness.state_dir(v) / NAME


def _identity(v: Vault) -> dict[str, str]:
    """What names the vault a cache is for: its id, its genesis fingerprint and its directory."""
    return {"vault": str(v.config["id"]), "fingerprint": str(v.fingerprint), "root": str(Path(v.root).resolve())}


# What each map holds per path: documents (status, sha256, key reference), records (status, sha256),
# manifests (status, sha256, signer's key, the fields a keyless check reads); and the history's lines
# whose signature was verified (line hash -> the signer's key); dossiers settled whole (``checkdocs``:
# the manifest's status, hash, signer and key, a hash of the documents' names and statuses, their
# count and bytes, the dossier's status).
MAPS = ("files", "records", "manifests", "lines", "dossiers")


class Verified:
    """The remembered statuses (``get``…) and what this check verified (``put``…), saved by ``save``."""

    def __init__(self, v: Vault, old: dict[str, Any]) -> None:
        self.v = v
        self.old: dict[str, Any] = {k: old.get(k, {}) for k in MAPS}
        self.old["keys"] = old.get("keys", [])
        self.old["history"] = old.get("history")
        self.new: dict[str, Any] = {k: {} for k in MAPS}
        self.new["keys"] = []
        self.new["history"] = None
        # The status each record had when ``record`` was asked (a dossier settled whole is judged by
        # its manifest's: one stat of it per check).
        self.statuses: dict[str, Status] = {}

    @classmethod
    def load(cls, v: Vault) -> Verified:
        """The cache for ``v``, or an empty one when there is none or it is not for ``v``."""
        old: dict[str, dict] = {}
        # (JSON makes no reference cycles: the collector would only walk the ~300,000 containers of a
        # 10,000-document cache again and again while they are made, a quarter of the parse's time)
        collecting = gc.isenabled()
        gc.disable()
        try:
            d = jsontext.loads(_path(v).read_bytes())
            if isinstance(d, dict) and d.get("format") == FORMAT and all(
                    d.get(k) == want for k, want in _identity(v).items()) \
                    and all(isinstance(d.get(k), dict) for k in MAPS):
                old = {k: d[k] for k in (*MAPS, "keys", "history") if k in d}
        except (OSError, ValueError, UnicodeDecodeError):
            pass  # missing, unreadable or damaged: verify everything afresh
        finally:
            if collecting:
                gc.enable()
        return cls(v, old)

    def _get(self, kind: str, rel: str, st: Status, *want: Any) -> list | None:
        e = self.old[kind].get(rel)
        n = 5 + len(want)
        if not isinstance(e, list) or len(e) < n or tuple(e[:5]) != st or tuple(e[5:n]) != want:
            return None
        self.new[kind][rel] = e
        return e

    def _put(self, kind: str, rel: str, st: Status, at: int, *values: Any) -> None:
        if max(st[3], st[4]) > at - _RACY_NS:
            return  # changed too recently: a write in the same tick would not change the status
        self.new[kind][rel] = [*st, *values]

    def get(self, rel: str, st: Status, sha256: str, key: str) -> bool:
        """Whether this client verified document ``rel`` with exactly this status, hash and key reference."""
        return self._get("files", rel, st, sha256, key) is not None

    def put(self, rel: str, st: Status, sha256: str, key: str, *, at: int) -> None:
        """Remember that document ``rel``, whose status was ``st`` at ``at`` (``time.time_ns()`` taken
        just before it was read) before its bytes were, has hash ``sha256`` and key reference ``key``."""
        self._put("files", rel, st, at, sha256, key)

    def record(self, rel: str, st: Status, sha256: str) -> bool:
        """Whether record ``rel`` with exactly this status was verified to have hash ``sha256``."""
        self.statuses[rel] = st
        return self._get("records", rel, st, sha256) is not None

    def put_record(self, rel: str, st: Status, sha256: str, *, at: int) -> None:
        self._put("records", rel, st, at, sha256)

    def manifest(self, rel: str, st: Status, sha256: str) -> tuple[str, str, dict] | None:
        """(signer, ``key_id`` of the signer's key it was verified under, what a keyless check reads
        of it) of manifest ``rel``, if this client verified it with exactly this status and hash."""
        e = self._get("manifests", rel, st, sha256)
        if e is None or len(e) != 9 or not all(isinstance(x, str) for x in e[6:8]) or not isinstance(e[8], dict):
            self.new["manifests"].pop(rel, None)
            return None
        return e[6], e[7], e[8]

    def put_manifest(self, rel: str, st: Status, sha256: str, by: str, key: str, fields: dict, *, at: int) -> None:
        self._put("manifests", rel, st, at, sha256, by, key_id(key), fields)

    def dossier(self, dossier_id: str) -> list | None:
        """What this client remembered of dossier ``dossier_id`` settled whole, if of the shape it writes."""
        e = self.old["dossiers"].get(dossier_id)
        if not (isinstance(e, list) and len(e) == 12 and all(type(x) is int for x in (*e[:5], e[9], e[10]))
                and all(isinstance(x, str) for x in (*e[5:9], e[11]))):
            return None
        return e

    def keep_dossier(self, dossier_id: str, e: list, names: list[str]) -> None:
        """Keep dossier ``dossier_id`` settled (``e``), with what was remembered of its manifest and
        its documents ``names`` one by one (for when it is no longer settled whole)."""
        self.new["dossiers"][dossier_id] = e
        base = f"dossiers/{dossier_id}/"
        if (m := self.old["manifests"].get(base + "manifest.toml")) is not None:
            self.new["manifests"][base + "manifest.toml"] = m
        for n in names:
            if (f := self.old["files"].get(base + "documents/" + n)) is not None:
                self.new["files"][base + "documents/" + n] = f

    def put_dossier(self, dossier_id: str, e: list) -> None:
        self.new["dossiers"][dossier_id] = e

    def signatures(self) -> dict[str, str]:
        """History lines (by hash) whose signature was verified, with the key it was verified under
        (``lines`` holds an index into ``keys``: member keys are long and few)."""
        keys = self.old.get("keys")
        if not isinstance(keys, list):
            return {}
        return {h: keys[i] for h, i in self.old["lines"].items()
                if isinstance(i, int) and 0 <= i < len(keys) and isinstance(keys[i], str)}

    def put_signatures(self, lines: dict[str, str]) -> None:
        index: dict[str, int] = {}
        self.new["lines"] = {h: index.setdefault(k, len(index)) for h, k in lines.items()}
        self.new["keys"] = list(index)

    def history(self) -> Any:
        """The checkpoint of the history's replay kept by the last check (``replaypoint``: used only
        if the log's bytes up to it are those it was taken of), or None."""
        return self.old["history"]

    def put_history(self, checkpoint: dict[str, Any] | None) -> None:
        self.new["history"] = checkpoint

    def save(self) -> None:
        """Replace the cache with what this check verified (what it no longer checks drops out)."""
        # A replay resumed from the kept checkpoint goes on in its very state (changed in place): the
        # checkpoint is the same if the replay was resumed from it and read nothing after it.
        old_cp, new_cp = self.old["history"], self.new["history"]
        same_cp = old_cp is None and new_cp is None or isinstance(old_cp, dict) and isinstance(new_cp, dict) \
            and new_cp["state"] is old_cp.get("state") and new_cp["prefix"] == old_cp.get("prefix")
        if same_cp and all(self.new[k] == self.old[k] for k in (*MAPS, "keys")):
            return
        data = json.dumps({"format": FORMAT, **_identity(self.v), **self.new},
                          separators=(",", ":"), sort_keys=True).encode()
        p = _path(self.v)
        try:
            with unconfined():  # this client's state, outside every vault by design
                make_dir(p.parent, parents=True)
                write_atomic(p, data, mode=0o600, sync=False)
        except OSError:
            pass  # only a cache: the next check verifies again
