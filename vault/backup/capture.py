"""Capturing a consistent state of the vault for a backup: hard links under the shared lock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator
import contextlib
import fcntl
import os
import secrets
import shutil
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from vault.archive import members
from vault.backup.mirror import is_table_name
from vault.store import STAGING_PREFIX, TMP_PREFIX, NotRegularError, make_dir, read_regular, open_regular, remove_tree, seam, walk
from vault.store.locking import close_lock, open_lock
from vault.i18n import Message, N_

if TYPE_CHECKING:
    from vault.archive.vault import Vault

_OWNER = ".owner"
#: Top-level directories whose files are appended in place rather than replaced (the audit log).
APPENDED = frozenset({"audit"})


@dataclass
class Staging:
    """A frozen copy of the vault: hard links (or copies) of every file, taken under the shared lock.

    The staging directory is flat (files are named 0, 1, 2, ...); ``files`` maps vault paths to them.
    """

    dir: Path
    files: list[tuple[str, str | None]] = field(default_factory=list)  # vault path, staged path (None: unchanged, not linked)
    keys: dict[str, bytes] = field(default_factory=dict)  # key tables (``keys/<name>``): name -> the bytes read under the lock
    irregular: list[str] = field(default_factory=list)  # symbolic links, FIFOs, devices: never followed nor read
    sources: dict[str, os.stat_result] = field(default_factory=dict)  # copied or unlinked files: the original's stat
    recipients: list = field(default_factory=list)  # the captured state's ring recipients
    _owner: int | None = None
    _remover: threading.Thread | None = None
    _removed: BaseException | None = None

    def path(self, rel: str) -> Path | None:
        """Where the staging holds a vault file's captured bytes (None: not linked, or no such file)."""
        staged = dict(self.files).get(rel)
        return Path(staged) if staged is not None else None

    def remove(self, v: Vault) -> None:
        """Remove the staging directory (or wait for ``remove_soon``'s removal to end)."""
        if self._remover is not None:
            self._remover.join()
            self._remover = None
            if self._removed is not None:
                raise self._removed
            return
        self._remove_now(v)

    def _remove_now(self, v: Vault) -> None:
        # Under the shared lock: a writer sweeping temporaries walks the whole root (staging
        # included) under its exclusive lock, and must not see a directory vanish beneath it.
        with v.lock(exclusive=False):
            remove_tree(self.dir)
        if self._owner is not None:
            os.close(self._owner)
            self._owner = None

    def remove_soon(self, v: Vault) -> None:
        """Start removing the staging directory on a thread, once nothing more is read from it: its
        thousands of unlinks then overlap with the run's last uploads; ``remove`` waits for them."""
        def remove() -> None:
            try:
                self._remove_now(v)
            except BaseException as e:  # re-raised by ``remove`` on the run's thread
                self._removed = e

        self._remover = threading.Thread(target=remove, name="vault-backup-unstage", daemon=True)
        self._remover.start()


def _stage(src: str, dst: str, *, copy: bool) -> bool:
    """Hard-link ``src`` as ``dst``, or copy it where asked or where the link fails (another file
    system view, permissions) — a copy only of a regular file, never through a link (``open_regular``).
    Whether it copied."""
    if not copy:
        try:
            os.link(src, dst)
            return False
        except FileNotFoundError:
            raise
        except OSError:
            pass
    with open_regular(src) as fin, open(dst, "xb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return True


#: Names never captured: temporaries and staging directories.
_SKIPPED = (TMP_PREFIX, STAGING_PREFIX)


#: Never backed up. Grant key releases are copies of key tables: in an immutable snapshot they would
#: outlive a destruction (a restored vault simply has no active grants). Pending intake is encrypted
#: to the intake key, which destruction does not shred; it is backed up once accepted into a dossier.
EXCLUDED_DIRS = ("keys/grants", "intake")


def sweep_stale_staging(root: Path) -> None:
    """Remove staging directories of runs that died: their owner file is no longer locked."""
    for d in root.glob(STAGING_PREFIX + "*"):
        try:
            fd = os.open(d / _OWNER, os.O_RDONLY)
        except OSError:
            remove_tree(d)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live run owns it
        finally:
            os.close(fd)
        remove_tree(d)


@contextlib.contextmanager
def _audit_lock(root: Path) -> Iterator[None]:
    """Hold the audit trail's own lock shared, so the log and its checkpoint are copied as a pair."""
    path = root / "audit" / ".lock"
    if not path.parent.is_dir():
        yield
        return
    fd = open_lock(path, exclusive=False, wait=30.0, what=Message(N_("the audit trail")))
    try:
        yield
    finally:
        close_lock(fd)


def capture(v: Vault, unchanged: Callable[[str, os.stat_result], bool] | None = None) -> Staging:
    """Freeze the vault's current state into a staging directory, holding the shared lock only meanwhile.

    Every vault file is replaced by rename, never rewritten in place, so a hard link keeps the
    bytes it saw; only where linking fails (another file system view, permissions) is a file copied.
    A file whose status ``unchanged`` accepts (this target holds its bytes, by that status) is not
    linked: its status is kept (``sources``, path None) and its file left untouched — a link and its
    removal would move its ctime, and ``vault check`` would read it again. Key tables are read under
    the lock (``keys``): the mirror compares every one's bytes, and they are small.
    """
    with v.lock(exclusive=False):
        sweep_stale_staging(v.root)
    st = Staging(v.root / f"{STAGING_PREFIX}{secrets.token_hex(8)}")
    make_dir(st.dir)
    seam.step("create", st.dir / _OWNER)
    st._owner = os.open(st.dir / _OWNER, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(st._owner, fcntl.LOCK_EX)
    try:
        with v.lock(exclusive=False), _audit_lock(v.root):
            # One step for the whole staging: a stop inside it leaves a partial staging directory,
            # which is no different (the next run sweeps it) from a stop before it.
            seam.step("create", st.dir / "0")
            base, root = str(st.dir), os.fspath(v.root)
            for dirpath, dirnames, filenames in walk(root):  # (no lstat per directory)
                # (the walk's paths are the root's, joined with "/": the relative path is their tail)
                rel_dir = "." if dirpath == root else dirpath[len(root) + 1:]
                prefix = "" if rel_dir == "." else rel_dir + "/"
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(_SKIPPED) and
                                     prefix + d not in EXCLUDED_DIRS)
                for d in [d for d in dirnames if os.path.islink(f"{dirpath}/{d}")]:
                    # A directory replaced by a link: the walk would not enter it, and what it
                    # names is not the vault's. Named, like a file that is no regular file.
                    st.irregular.append(prefix + d)
                    dirnames.remove(d)
                if rel_dir == "keys":  # key tables (16.4): mirrored, never in a snapshot
                    # Nothing else under keys/ is captured: key releases (keys/grants/) outlive no
                    # destruction, and a table's .pending (a commit cut short) is the next writer's
                    # to finish — taken as a table it would be mirrored under a name that never
                    # expires nor is shredded, and a tree naming it would restore nothing.
                    dirnames[:] = []
                    for fn in filenames:
                        if is_table_name(fn):
                            try:
                                st.keys[fn] = read_regular(f"{dirpath}/{fn}")
                            except FileNotFoundError:
                                pass
                            except NotRegularError:
                                st.irregular.append(prefix + fn)
                    continue
                # Appended in place (the audit log): a link would see later appends, so it is copied.
                appended = rel_dir.split("/", 1)[0] in APPENDED
                for fn in sorted(filenames):
                    if fn.startswith(_SKIPPED) or fn == ".lock":
                        continue
                    rel = prefix + fn
                    src = f"{dirpath}/{fn}"
                    try:
                        now = os.lstat(src)
                    except FileNotFoundError:
                        continue
                    if not stat.S_ISREG(now.st_mode):
                        # A symbolic link would carry whatever it names off-site; a FIFO would stop
                        # the run: neither is a vault file, neither is followed or read.
                        st.irregular.append(rel)
                        continue
                    if not appended and unchanged is not None and unchanged(rel, now):
                        st.sources[rel] = now
                        st.files.append((rel, None))
                        continue
                    dst = f"{base}/{len(st.files)}"  # flat: one directory to make and remove
                    try:
                        copied = _stage(src, dst, copy=appended)
                    except FileNotFoundError:
                        continue
                    except NotRegularError:  # (replaced by one since its lstat)
                        st.irregular.append(rel)
                        continue
                    if copied:  # the original's status (a copy is a new inode each run)
                        st.sources[rel] = now
                    st.files.append((rel, dst))
            # Read under the same lock: the rings of exactly the state captured.
            st.recipients = members.ring_recipients(v)
    except BaseException:
        st.remove(v)
        raise
    return st
