"""What this client verified of each document: its file status → the ciphertext hash, outside the vault.

A keyless ``vault check`` hashes every document's ciphertext against its manifest. Most of those
bytes are the same from one check to the next, so each client remembers, for every document whose
hash it verified, the file's status as it was read — ``(st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)`` — with the hash and key reference it matched. A later check takes the hash from
here only when the status is exactly the same (the reasoning of git's index): whoever writes the
vault directory can set a file's mtime back (``utime``), but not its ctime, which the kernel sets
to its own clock on every write, rename, link or ``utime``; a file replaced by another is another
inode. A status whose mtime or ctime is less than ``_RACY_NS`` old when it was read is not
remembered, since a write within the same clock tick would leave it unchanged.

The file lives in this client's state directory (``witness.state_dir``: 0600 in a 0700 directory),
which the vault's writer cannot write, and it names the vault it is for: one that does not parse,
names another vault or directory, or has another format is ignored — never trusted, never an
error. ``check --read-data`` reads every byte regardless.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from vault.archive import witness
from vault.store import make_dir, unconfined, write_atomic

if TYPE_CHECKING:
    from vault.archive.handle import Vault

FORMAT = 1
NAME = "verified.json"

# A status read less than this after the file's last change is not remembered: a change in the same
# timestamp tick (coarse kernel clocks, 1 s or 2 s on some file systems) would not show in it.
_RACY_NS = 2_000_000_000

Status = tuple[int, int, int, int, int]


def status(st: os.stat_result) -> Status:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _path(v: Vault) -> Path:
    return witness.state_dir(v) / NAME


def _identity(v: Vault) -> dict[str, str]:
    """What names the vault a cache is for: its id, its genesis fingerprint and its directory."""
    return {"vault": str(v.config["id"]), "fingerprint": str(v.fingerprint), "root": str(Path(v.root).resolve())}


class Verified:
    """The remembered statuses (``get``) and what this check verified (``put``), saved by ``save``."""

    def __init__(self, v: Vault, old: dict[str, list]) -> None:
        self.v, self.old, self.new = v, old, {}

    @classmethod
    def load(cls, v: Vault) -> Verified:
        """The cache for ``v``, or an empty one when there is none or it is not for ``v``."""
        old: dict[str, list] = {}
        try:
            d = json.loads(_path(v).read_bytes())
            if isinstance(d, dict) and d.get("format") == FORMAT and all(
                    d.get(k) == want for k, want in _identity(v).items()) and isinstance(d.get("files"), dict):
                old = d["files"]
        except (OSError, ValueError, UnicodeDecodeError):
            pass  # missing, unreadable or damaged: verify everything afresh
        return cls(v, old)

    def get(self, rel: str, st: Status, sha256: str, key: str) -> bool:
        """Whether this client verified ``rel`` with exactly this status, hash and key reference."""
        e = self.old.get(rel)
        if not isinstance(e, list) or len(e) != 7 or e[5] != sha256 or e[6] != key or tuple(e[:5]) != st:
            return False
        self.new[rel] = e
        return True

    def put(self, rel: str, st: Status, sha256: str, key: str, *, at: int) -> None:
        """Remember that ``rel``, whose status was ``st`` at ``at`` (``time.time_ns()`` taken just
        before it was read) before its bytes were, has hash ``sha256`` and key reference ``key``."""
        if max(st[3], st[4]) > at - _RACY_NS:
            return  # changed too recently: a write in the same tick would not change the status
        self.new[rel] = [*st, sha256, key]

    def save(self) -> None:
        """Replace the cache with what this check verified (documents no longer checked drop out)."""
        if self.new == self.old:
            return
        data = json.dumps({"format": FORMAT, **_identity(self.v), "files": self.new},
                          separators=(",", ":"), sort_keys=True).encode()
        p = _path(self.v)
        try:
            with unconfined():  # this client's state, outside every vault by design
                make_dir(p.parent, parents=True)
                write_atomic(p, data, mode=0o600, sync=False)
        except OSError:
            pass  # only a cache: the next check hashes again
