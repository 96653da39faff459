"""The built-in backup targets: ``file`` (a local or mounted directory), and their registration.

``s3`` (any S3-compatible store) is in ``vault_plugins.s3target``, object names in
``vault_plugins.objectnames``.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator
from urllib.parse import unquote, urlsplit

from vault.errors import InputError, IntegrityError, NotFoundError
from vault.i18n import N_
from vault.hookspecs import hookimpl
from vault.store import NotRegularError, make_dir, open_regular, seam
from vault.store.directio import DirectWriter
from vault.store.syncing import SYNCFS_MIN_FILES, can_syncfs, syncfs
from vault_plugins.objectnames import TMP as _TMP, check_name
from vault_plugins.s3target import S3Target

__all__ = ["FileTarget", "S3Target", "check_name", "vault_register_backup_targets"]

_WAY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _name(d: int, tmp: str, leaf: str, path: Path, create_only: bool) -> None:
    """Give a written temporary file of the open directory ``d`` its object's name (``path``: how the
    crash seam names it)."""
    seam.step("rename", path)
    if create_only:
        # link() fails on an existing name where rename() would replace it: a create-only put.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, leaf, src_dir_fd=d, dst_dir_fd=d, follow_symlinks=False)
        seam.step("unlink", path.with_name(tmp))
        os.unlink(tmp, dir_fd=d)
    else:
        os.replace(tmp, leaf, src_dir_fd=d, dst_dir_fd=d)


def _sync_dir(d: int, path: Path) -> None:
    """Make a rename or unlink in the open directory ``d`` (at ``path``) durable."""
    seam.step("fsync", path)
    os.fsync(d)


class FileTarget:
    """Objects as files under a directory: ``file:///abs/path``; writes are temp file + fsync + rename.

    The directory's owner is not trusted: no object is read, written or deleted through a symbolic
    link or a non-directory below the root (the root itself may be a link the user chose), and only
    a regular file is read as an object — never a FIFO, which would wait for ever, nor a device.
    Each operation opens the root once and each directory below it relative to the one above
    (``O_NOFOLLOW``), then works in the last one by its descriptor: no path is resolved again between
    the look at the way and its use, so a directory swapped for a link while it runs steers nothing
    out of the target. (``put_many`` opens the way again, the same way, to name what it wrote: a batch
    may span more directories than a process may hold open.)
    """

    #: It holds no connection, lock or thread: a forked process may put objects through it (a large
    #: backup pass packs on worker processes; docs/PLUGINS.md).
    fork_safe = True

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InputError(N_("bad file target {url!r}"), hint=N_("write an absolute path as file:///path/to/dir"), url=url)
        self.url = url
        self.root = Path(unquote(parts.path))

    def _way(self, name: str, parts: builtins.list[str], *, make: bool = False) -> int | None:
        """The directory ``parts`` below the root, open (the caller closes it), each part opened in the
        one above it without following a link; missing parts made with ``make``, else None. A part
        that is a symbolic link or no directory is refused (a link would take a put or a delete out
        of the target)."""
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # (the root may be a link)
        except FileNotFoundError:
            if not make:
                return None
            make_dir(self.root, mode=0o777, parents=True)  # (each directory made is durable in its parent)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for i, part in enumerate(parts):
                try:
                    try:
                        below = os.open(part, _WAY, dir_fd=fd)
                    except FileNotFoundError:
                        if not make:
                            os.close(fd)
                            return None
                        seam.step("mkdir", self.root.joinpath(*parts[: i + 1]))
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(part, 0o700 if i == len(parts) - 1 else 0o777, dir_fd=fd)
                        # Its name durable in its parent before anything is put in it: a power cut
                        # must not keep a snapshot and lose the directory of the packs it names.
                        seam.step("fsync", self.root.joinpath(*parts[:i]))
                        os.fsync(fd)
                        below = os.open(part, _WAY, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    raise IntegrityError(N_("{url}: object {name} is reached through {part}, which is no directory "
                                            "(a symbolic link or other file: tampered with)"),
                                         hint=N_("run 'vault backup verify'"), url=self.url, name=name,
                                         part="/".join(parts[: i + 1])) from None
                os.close(fd)
                fd = below
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _not_regular(self, name: str) -> IntegrityError:
        return IntegrityError(N_("{url}: object {name} is not a regular file (a symbolic link, FIFO or device: "
                                 "tampered with)"), hint=N_("run 'vault backup verify'"), url=self.url, name=name)

    def _missing(self, name: str) -> NotFoundError:
        return NotFoundError(N_("{url}: no object {name}"), url=self.url, name=name)

    def put(self, name: str, data: BinaryIO, *, create_only: bool = False) -> None:
        *parts, leaf = check_name(name).split("/")
        path = self.root / name
        d = self._way(name, parts, make=True)
        assert d is not None
        try:
            tmp = f"{_TMP}{leaf}.{secrets.token_hex(4)}"
            try:
                seam.step("create", path.with_name(tmp))  # the crash seam (vault.store.seam) counts every durable step
                fd = os.open(tmp, _NEW, 0o666, dir_fd=d)
                with os.fdopen(fd, "wb", buffering=0) as f:
                    # A pack goes past the page cache (O_DIRECT, where the file system takes it): its
                    # copy into the cache and write-back cost more CPU than the disk; the fsync decides.
                    with DirectWriter(f, f) as out:
                        while chunk := data.read(1 << 20):
                            out.write(chunk)
                    seam.step("fsync", path.with_name(tmp))
                    os.fsync(fd)
                _name(d, tmp, leaf, path, create_only)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=d)
                raise
            _sync_dir(d, path.parent)
        finally:
            os.close(d)

    def put_many(self, items: builtins.list[tuple[str, bytes]], *, create_only: bool = False) -> None:
        """Put several small objects made durable together (the key mirror's generations): each is
        written to its temporary file, the batch synced at once (one syncfs of each local Linux file
        system it is on, else an fsync of each file: ``vault.store.syncing``), then each named, and
        the directories synced once. Each object is whole or absent, as with ``put``; an interruption
        leaves temporaries (``sweep``), an error leaves what was named so far durable."""
        ways = [check_name(name).split("/") for name, _ in items]
        many_files = len(items) >= SYNCFS_MIN_FILES
        many_dirs = len({tuple(w[:-1]) for w in ways}) >= SYNCFS_MIN_FILES
        local: dict[int, bool] = {}  # device -> whether a syncfs there makes its files durable
        fs: dict[int, int] = {}  # device -> an open directory on it, for that syncfs
        staged: builtins.list[tuple[str, builtins.list[str], str]] = []  # (name, way, temporary)
        here: tuple[builtins.list[str], int] | None = None  # the directory naming is in, open

        def leave(sync: bool) -> None:
            nonlocal here
            if here is not None:
                (way, d), here = here, None
                try:
                    if sync:
                        _sync_dir(d, self.root.joinpath(*way))
                finally:
                    os.close(d)

        try:
            for (name, data), way in zip(items, ways):
                d = self._way(name, way[:-1], make=True)
                assert d is not None
                try:
                    dev = os.fstat(d).st_dev
                    if dev not in local:
                        local[dev] = can_syncfs(d)
                        if local[dev]:
                            fs[dev] = os.dup(d)
                    tmp = f"{_TMP}{way[-1]}.{secrets.token_hex(4)}"
                    seam.step("create", self.root.joinpath(*way[:-1], tmp))
                    fd = os.open(tmp, _NEW, 0o666, dir_fd=d)
                    staged.append((name, way, tmp))
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                        f.flush()
                        if not (many_files and local[dev]):  # (each file on its own)
                            seam.step("fsync", self.root.joinpath(*way[:-1], tmp))
                            os.fsync(fd)
                finally:
                    os.close(d)
            if many_files and fs:
                seam.step("sync", self.root.joinpath(*staged[0][1][:-1], staged[0][2]))
                for d in fs.values():
                    syncfs(d, self.root)
            dirs_by_syncfs = many_dirs and all(local.values())
            for name, way, tmp in staged:
                if here is None or here[0] != way[:-1]:
                    leave(not dirs_by_syncfs)
                    d = self._way(name, way[:-1])
                    if d is None:
                        raise self._missing(name)
                    here = (way[:-1], d)
                _name(here[1], tmp, way[-1], self.root / name, create_only)
            leave(not dirs_by_syncfs)
            if dirs_by_syncfs:
                seam.step("sync", self.root.joinpath(*staged[0][1][:-1]))
                for d in fs.values():
                    syncfs(d, self.root)
        except BaseException:
            for name, way, tmp in staged:
                with contextlib.suppress(OSError, IntegrityError):
                    d = self._way(name, way[:-1])
                    if d is not None:
                        try:
                            os.unlink(tmp, dir_fd=d)
                        finally:
                            os.close(d)
            # What was named is durable before the error is: the next run lists it and puts it no more.
            with contextlib.suppress(OSError):
                leave(True)
            for d in fs.values():
                with contextlib.suppress(OSError):
                    syncfs(d, self.root)
            raise
        finally:
            leave(False)
            for d in fs.values():
                os.close(d)

    def get(self, name: str) -> BinaryIO:
        *parts, leaf = check_name(name).split("/")
        d = self._way(name, parts)
        if d is None:
            raise self._missing(name)
        try:
            return open_regular(leaf, name=name, dir_fd=d)
        except FileNotFoundError:
            raise self._missing(name) from None
        except NotRegularError:
            raise self._not_regular(name) from None
        finally:
            os.close(d)

    def exists(self, name: str) -> bool:
        *parts, leaf = check_name(name).split("/")
        d = self._way(name, parts)
        if d is None:
            return False
        try:
            mode = os.stat(leaf, dir_fd=d, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return False
        finally:
            os.close(d)
        if not stat.S_ISREG(mode):
            raise self._not_regular(name)
        return True

    def _walk(self, d: int, rel: str, temporaries: bool) -> Iterator[tuple[int, str, os.DirEntry[str]]]:
        """Every entry but a directory below the open directory ``d`` (its name there ``rel``), with
        the directory it is in, open; directories entered by their descriptors, never through a
        link (a linked directory is neither entered nor listed). ``d`` is closed at the end."""
        try:
            with os.scandir(d) as it:
                entries = list(it)
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        if not temporaries and e.name.startswith(_TMP):
                            continue
                        try:
                            below = os.open(e.name, _WAY, dir_fd=d)
                        except OSError:
                            continue  # (gone, or swapped for a link, since it was listed)
                        yield from self._walk(below, f"{rel}{e.name}/", temporaries)
                    elif not e.is_dir():  # (a link to a directory names no object)
                        yield d, rel, e
                except OSError:
                    continue
        finally:
            os.close(d)

    def list(self, prefix: str = "") -> Iterator[str]:
        # The prefix may end inside a name ("snapshots/ab"): walk the directory it is in.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        d = self._way(prefix, base.split("/") if base else [])
        if d is None:
            return iter([])
        found = [name for _, rel, e in self._walk(d, f"{base}/" if base else "", False)
                 if not e.name.startswith(_TMP) and (name := rel + e.name).startswith(prefix)]
        return iter(sorted(found))

    def sweep(self, older_than: float) -> builtins.list[str]:
        """Remove what interrupted puts left (temporary files not written for ``older_than`` seconds:
        a put in progress writes its file as it goes); the names removed."""
        import time

        cutoff, gone = time.time() - older_than, []
        d = self._way("", [])
        if d is None:
            return []
        for parent, rel, e in self._walk(d, "", True):
            with contextlib.suppress(FileNotFoundError):
                if e.name.startswith(_TMP) and e.stat(follow_symlinks=False).st_mtime < cutoff:
                    seam.step("unlink", self.root / rel / e.name)
                    os.unlink(e.name, dir_fd=parent)
                    gone.append(rel + e.name)
        return sorted(gone)

    def delete(self, name: str) -> None:
        # unlink(2) removes a link or FIFO itself, never what a link names; a directory is refused.
        *parts, leaf = check_name(name).split("/")
        d = self._way(name, parts)
        if d is None:
            raise self._missing(name)
        try:
            try:
                if stat.S_ISDIR(os.stat(leaf, dir_fd=d, follow_symlinks=False).st_mode):
                    raise self._not_regular(name)
                seam.step("unlink", self.root / name)
                os.unlink(leaf, dir_fd=d)
            except FileNotFoundError:
                raise self._missing(name) from None
            _sync_dir(d, (self.root / name).parent)
        finally:
            os.close(d)


@hookimpl
def vault_register_backup_targets(register: Callable[[str, Any], None]) -> None:
    """The built-in targets: ``file`` and ``s3``."""
    register("file", FileTarget)
    register("s3", S3Target)
