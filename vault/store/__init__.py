"""The store: atomic files and temporaries; its modules hold locks, bulk durability and the format."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import os
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

from vault.errors import IntegrityError
from vault.store import seam
from vault.i18n import N_

TMP_PREFIX = ".tmp-"
#: Where a writer holding the exclusive lock creates its temporaries (and keeps its staging journal,
#: ``vault.archive.staging``): one small directory that the next writer empties, instead of a
#: temporary beside each file that only a walk of the whole vault could find again.
WORK_DIR = ".tmp-writes"
#: Where ``vault backup run`` stages hard links of the vault's files, in the vault root (links need one
#: file system): not the vault's own files, and skipped by every walk of it.
STAGING_PREFIX = ".backup-staging-"

#: The vault directory (resolved) whose exclusive lock this process holds: while it is set, every
#: write must land inside it. A directory of the vault replaced by a symbolic link would otherwise
#: carry a write (a hold, a manifest, a key table) out of the vault.
_confined_to: contextvars.ContextVar[Path | None] = contextvars.ContextVar("vault_confined_to", default=None)


class NotRegularError(IntegrityError, OSError):
    """A vault file that is a symbolic link, a FIFO, a socket or a device: never followed nor read.

    An ``IntegrityError`` (named like other damage) and an ``OSError`` (where a caller takes an
    unreadable file as missing, it takes this one so too)."""


def open_regular(path: str | os.PathLike[str], *, name: str | None = None,
                 dir_fd: int | None = None) -> io.BufferedReader:
    """The regular file at ``path``, open for reading — never through a symbolic link in its last
    part (``O_NOFOLLOW``), and never a FIFO or device, whose open or read would wait for a writer
    that never comes, or read what is not the vault's (``O_NONBLOCK`` for the open, then its type).

    :param name: how the error names it (a vault-relative path), else ``path``.
    :param dir_fd: ``path`` is relative to this open directory (``openat``).
    :raises FileNotFoundError: nothing there.
    :raises NotRegularError: a symbolic link, FIFO, socket or device.
    """
    return os.fdopen(_regular_fd(path, os.O_RDONLY, name, dir_fd), "rb")


def open_regular_to_update(path: str | os.PathLike[str], *, name: str | None = None) -> io.BufferedRandom:
    """``open_regular`` for reading and writing in place (overwriting, truncating)."""
    return os.fdopen(_regular_fd(path, os.O_RDWR, name), "r+b")


def _regular_fd(path: str | os.PathLike[str], mode: int, name: str | None, dir_fd: int | None = None) -> int:
    try:
        fd = os.open(path, mode | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        # ELOOP: the last part is a symbolic link; ENXIO, ENODEV, EOPNOTSUPP: a socket or a device
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
            raise not_regular(name or path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_regular(name or path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str], *, name: str | None = None) -> bytes:
    """All bytes of the regular file at ``path`` (``open_regular``)."""
    with open_regular(path, name=name) as f:
        return f.read()


def not_regular(path: str | os.PathLike[str]) -> NotRegularError:
    """The error for ``path`` (as the caller names it: a vault-relative path reads best)."""
    return NotRegularError(N_("{path}: not a regular file (a symbolic link, FIFO or device: tampered with)"),
                           hint=N_("run 'vault check'; remove it, or restore the file from a backup"),
                           path=os.fspath(path))


def check_confined(path: Path) -> None:
    """Refuse a write to ``path`` that symbolic links would take outside the locked vault directory."""
    root = _confined_to.get()
    if root is None:
        return
    real = Path(os.path.realpath(path.parent))
    if real != root and not real.is_relative_to(root):
        rel = os.path.relpath(os.path.abspath(path), root)
        raise IntegrityError(N_("{rel}: a symbolic link takes this write outside the vault directory (tampered with)"),
                             hint=N_("run 'vault check'; replace the link by the directory it should be"), rel=rel)


@contextlib.contextmanager
def confined(root: Path) -> Iterator[None]:
    """Within the block, every ``atomic_writer``/``write_new`` must stay inside ``root``."""
    token = _confined_to.set(Path(os.path.realpath(root)))
    try:
        yield
    finally:
        _confined_to.reset(token)


@contextlib.contextmanager
def unconfined() -> Iterator[None]:
    """Within the block, writes are not held to the locked vault: only for this client's own state,
    which lives outside every vault (``vault.archive.witness``), never for a vault file."""
    token = _confined_to.set(None)
    try:
        yield
    finally:
        _confined_to.reset(token)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    seam.step("fsync", path)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    """A new temporary for ``path``: in the locked vault's work directory while this process holds
    its exclusive lock (the next writer sweeps it from there), else beside ``path`` (the audit
    trail's appenders, the portal and intake under the shared lock, the client's own state)."""
    name = f"{TMP_PREFIX}{path.name}.{os.urandom(4).hex()}"
    root = _confined_to.get()
    if root is None:
        return path.with_name(name)
    return work_dir(root) / name


def work_dir(root: Path) -> Path:
    """The vault's work directory, made if missing; refused if it is not a plain directory of the
    vault (a symbolic link there would carry every temporary out of it)."""
    d = Path(root) / WORK_DIR
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        make_dir(d)
        fsync_dir(Path(root))
        st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode):
        raise IntegrityError(N_("{rel}: not a directory (tampered with)"),
                             hint=N_("run 'vault check'; remove it (it holds only temporaries)"), rel=WORK_DIR)
    return d


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o600, sync: bool = True) -> Iterator[BinaryIO]:
    """Yield a file that replaces ``path`` all at once when the block ends without error.

    The data goes to a temporary file beside ``path``; it is fsynced, renamed over ``path`` and the
    directory is fsynced, so a crash leaves either the old file or the new one, never a mix. With
    ``sync=False`` the caller takes over durability (``sync_files`` then ``fsync_dir``), which lets a
    bulk import pay for its syncs once instead of per file.
    """
    check_confined(path)
    make_dir(path.parent, mode=0o777, parents=True)
    tmp = _tmp_name(path)
    seam.step("create", tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if sync:
                seam.step("fsync", tmp)
                os.fsync(f.fileno())
        seam.step("rename", path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync:
        fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_writer``)."""
    with atomic_writer(path, mode=mode, sync=sync) as f:
        f.write(data)


def write_new(path: Path, data: bytes, *, mode: int = 0o600, sync: bool = False) -> None:
    """Create ``path`` with ``data``; never replaces an existing file. With ``sync`` its bytes are
    fsynced before it is closed; its name is made durable by the caller (``fsync_dir``)."""
    check_confined(path)
    make_dir(path.parent, mode=0o777, parents=True)
    seam.step("create", path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        seam.step("write", path)  # a stop here leaves the file empty
        f.write(data)
        if sync:
            f.flush()
            seam.step("fsync", path)
            os.fsync(fd)


def replace(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst`` (``fsync_dir`` makes it durable)."""
    check_confined(dst)
    seam.step("rename", dst)
    os.replace(src, dst)


def remove(path: Path, *, missing_ok: bool = False) -> bool:
    """Unlink ``path`` (``fsync_dir`` makes it durable); with ``missing_ok``, False if it was not there."""
    if missing_ok and not os.path.lexists(path):
        return False
    seam.step("unlink", path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise
        return False
    return True


def make_dir(path: Path, *, mode: int = 0o700, parents: bool = False, sync: bool = True) -> None:
    """Make the directory ``path`` unless it exists (``parents``: and its missing parents, with the
    default mode). Each directory made is durable when this returns: its entry in its parent is
    fsynced, so that what is later written into it and made durable with its own directory does not
    vanish with a power cut that takes the new directory's name (``tests/test_power_loss.py``).
    ``sync=False``: not yet — the caller makes many at once durable later (``sync_files``' ``top``)."""
    path = Path(path)
    if os.path.isdir(path):
        return
    missing = [path]
    if parents:
        while not os.path.isdir(missing[-1].parent) and missing[-1].parent != missing[-1]:
            missing.append(missing[-1].parent)
    for d in reversed(missing):
        seam.step("mkdir", d)
        try:
            os.mkdir(d, mode if d == path else 0o777)
        except FileExistsError:
            if not os.path.isdir(d):
                raise
        if sync:
            fsync_dir(d.parent)


def remove_tree(path: Path) -> None:
    """Remove the directory ``path`` and everything in it (one step: its contents are never a record)."""
    if not os.path.lexists(path):
        return
    seam.step("rmtree", path)
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def walk(top: Path | str, odd: list[str] | None = None) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top)`` (top down, symbolic links to directories listed but not followed; prune
    ``dirnames`` in place), without its ``lstat`` of every directory: the directory entry's type
    says which are links (``check`` walks every directory of the vault, twice). With ``odd``, the
    path of every entry listed that is neither a regular file nor a directory — a symbolic link (to
    a directory too), a FIFO, a socket, a device — is appended to it (from the entry's type too)."""
    stack = [os.fspath(top)]
    while stack:
        d = stack.pop()
        dirs: list[str] = []
        files: list[str] = []
        links: set[str] = set()
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        is_dir = e.is_dir()
                    except OSError:
                        is_dir = False
                    (dirs if is_dir else files).append(e.name)
                    if is_dir and e.is_symlink():
                        links.add(e.name)
                    if odd is not None and not (e.is_dir(follow_symlinks=False) or e.is_file(follow_symlinks=False)):
                        odd.append(os.path.join(d, e.name))
        except OSError:
            continue
        yield d, dirs, files
        stack.extend(os.path.join(d, x) for x in reversed(dirs) if x not in links)


def find_temporaries(root: Path) -> list[Path]:
    """Temporary files left by interrupted writes anywhere in the vault (a full walk, for ``vault
    repair``; ``check`` reads the same from the walk it makes anyway: ``Tree.temporaries``)."""
    found = []
    for dirpath, dirnames, filenames in walk(root):
        if dirpath == os.fspath(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(STAGING_PREFIX)]
        found += [Path(dirpath) / f for f in filenames if f.startswith(TMP_PREFIX)]
    return found


#: The directories where a temporary may be left that the next exclusive lock removes: the work
#: directory (every write under the exclusive lock) and ``intake/`` (a submission's record, written
#: under the shared lock). The audit trail's are removed by its next appender (``audit``), under
#: the audit lock its writer held: the vault lock does not exclude them.
SWEPT_DIRS = (WORK_DIR, "intake")


def sweep_temporaries(root: Path, *, full: bool = False) -> list[Path]:
    """Remove temporary files left by an interrupted write; call only under the exclusive lock.

    It lists the few directories where they are made (``SWEPT_DIRS``), never the whole vault, so
    taking the lock costs the same at ten dossiers and at a hundred thousand. ``full`` (``vault
    repair``) walks everything for temporaries an older version left beside their files, except the
    audit trail's, which are its own appenders' to remove.
    """
    if full:
        found = [p for p in find_temporaries(root) if p.parent != root / "audit"]
    else:
        found = []
        for d in SWEPT_DIRS:
            try:
                found += [Path(root) / d / f for f in os.listdir(Path(root) / d) if f.startswith(TMP_PREFIX)]
            except (FileNotFoundError, NotADirectoryError):
                continue
    removed = []
    for p in found:
        if remove(p, missing_ok=True):
            removed.append(p)
    return removed


def sweep_dir(d: Path) -> list[Path]:
    """Remove the temporaries directly in ``d`` (the audit trail's, under its exclusive lock)."""
    try:
        names = [f for f in os.listdir(d) if f.startswith(TMP_PREFIX)]
    except FileNotFoundError:
        return []
    return [d / f for f in names if remove(d / f, missing_ok=True)]
