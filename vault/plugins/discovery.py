"""Finding the installed ``vault`` entry points once, cached against the installed distributions' metadata."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import re
import secrets
import stat
import sys
from pathlib import Path
from typing import Any, NamedTuple

#: Where the cache lives (default ``$XDG_CACHE_HOME/vault``, else ``~/.cache/vault``).
CACHE_DIR_ENV = "VAULT_CACHE_DIR"
_CACHE_FORMAT = 1
_METADATA_FILES = ("entry_points.txt", "METADATA", "PKG-INFO")
# The form importlib.metadata gives an entry point's value: module[:attr[.attr…]] [extras].
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[.*\]\s*)?\Z")


class Found(NamedTuple):
    """One entry point of the group: its distribution (normalised name, version), name and value."""

    dist: str
    version: str | None
    name: str
    value: str


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def cache_dir() -> Path:
    base = os.environ.get(CACHE_DIR_ENV)
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vault"


def stamp() -> str:
    """A digest of what decides the entry points: the search path, every distribution's metadata
    directory on it and the identity (inode, size, mtime) of its metadata files. Installing,
    removing, upgrading or editing a distribution changes it; it costs a directory listing per path
    entry and a few ``stat`` calls per distribution, against parsing every METADATA file."""
    h = hashlib.sha256(f"{_CACHE_FORMAT}\0{sys.executable}\0{sys.version}".encode())
    for entry in sys.path:
        h.update(b"\1" + os.fsencode(entry))
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            h.update(b"\2" + os.fsencode(name))
            base = os.path.join(entry or ".", name)
            for f in _METADATA_FILES:
                try:
                    st = os.stat(os.path.join(base, f))
                except OSError:
                    continue
                h.update(f"\3{f}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}".encode())
    return h.hexdigest()


def scan(group: str) -> list[Found]:
    """Every entry point of ``group`` in the installed distributions (the slow way: parses all metadata)."""
    import importlib.metadata

    out = []
    for dist in importlib.metadata.distributions():
        eps = [ep for ep in dist.entry_points if ep.group == group]
        if eps:
            name = normalise(dist.metadata["Name"] or "")
            out += [Found(name, dist.version, ep.name, ep.value) for ep in eps]
    return out


def _cache_file() -> Path:
    # Per interpreter and search path: two virtual environments never share an answer.
    key = hashlib.sha256(f"{sys.executable}\0{os.pathsep.join(sys.path)}".encode()).hexdigest()[:16]
    return cache_dir() / f"entry-points-{key}.json"


def _read_cache(path: Path, want: str, group: str) -> list[Found] | None:
    """The cached list if it is ours, not writable by anyone else, and made for ``want``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        parent = os.stat(path.parent)
        # Whoever can write the cache chooses what this process imports: trust only our own file in
        # our own directory, neither writable by group or others.
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022 \
                or parent.st_uid != os.geteuid() or parent.st_mode & 0o022:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = json.loads(f.read(1 << 20))
        if data.get("format") != _CACHE_FORMAT or data.get("stamp") != want or data.get("group") != group:
            return None
        return [Found(str(d), None if v is None else str(v), str(n), str(val)) for d, v, n, val in data["entry_points"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    finally:
        os.close(fd)


def _write_cache(path: Path, want: str, group: str, found: list[Found]) -> None:
    """Best effort: a cache that cannot be written only means the next command scans again."""
    data = json.dumps({"format": _CACHE_FORMAT, "stamp": want, "group": group,
                       "entry_points": [list(f) for f in found]}).encode()
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def entry_points(group: str) -> list[Found]:
    """The group's entry points: from the cache when the installed distributions have not changed
    since it was written, otherwise scanned and cached again (0600, in a 0700 directory)."""
    want = stamp()
    path = _cache_file()
    found = _read_cache(path, want, group)
    if found is None:
        found = scan(group)
        _write_cache(path, want, group, found)
    return found


def load(value: str) -> Any:
    """Import what an entry point's value names (``module:attr.attr``), as ``EntryPoint.load`` does."""
    m = _VALUE.match(value.strip())
    if m is None:
        raise ValueError(f"not an entry point value: {value[:80]!r}")
    obj: Any = importlib.import_module(m.group("module"))
    for attr in (m.group("attr") or "").split("."):
        if attr:
            obj = getattr(obj, attr)
    return obj
