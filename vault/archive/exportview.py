"""What an export-format plugin is shown of a dossier: cleartext facts always, sealed data only when granted."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, cast

from vault.crypto import age
from vault.errors import (AuthenticationError, ConflictError, FormatError, InputError, IntegrityError,
                          NoIdentityMatchError, PermissionDeniedError)
from vault.store.counting import counting
from vault.store.keytable import KeyTable, open_values
from vault.i18n import Message, N_
from vault.store import open_regular

if TYPE_CHECKING:
    from vault.archive.vault import Vault

#: What an exporter may declare in ``reads``: sealed fields (titles, sources, the customer's profile)
#: and document content (``open`` and ``rewrap``).
READS = frozenset({"sealed", "content"})
#: The cleartext manifest facts of a dossier an exporter is given (docs/FORMAT.md §9).
DOSSIER_FACTS = ("number", "customer_type", "business", "dept", "class", "created", "status", "revision")
#: The cleartext facts of a document an exporter is given; ``size`` and ``sha256`` are of the ciphertext.
DOCUMENT_FACTS = ("number", "category", "date", "original", "version", "replaces", "superseded_by", "status",
                  "added_at", "added_by", "size", "sha256", "paper_location")


def _denied(what: str, number: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        N_("this export was not given the {what} of {number}"),
        hint=N_("only a member who may read the dossier, with an approved copy request, exports sealed data"), what=what, number=number)


class ExportDossier(Mapping[str, Any]):
    """A read-only mapping of the dossier's cleartext facts, plus its sealed profile when granted.

    It holds no path and no key table an exporter could reach by attribute: the sealed profile is
    behind a closure, and ``granted`` says what the vault let this export see.
    """

    def __init__(self, facts: Mapping[str, Any], *, granted: frozenset[str],
                 profile: Callable[[], Mapping[str, Any]] | None, exported_by: str, exported_at: str,
                 fmt: str, request: str | None) -> None:
        self._facts = {k: facts[k] for k in DOSSIER_FACTS if k in facts}
        self._profile = profile
        #: What this export may open: a subset of ``{"sealed", "content"}``.
        self.granted = granted
        self.exported_by, self.exported_at, self.format, self.request = exported_by, exported_at, fmt, request

    @property
    def readable(self) -> bool:
        """Whether sealed fields are available to this export."""
        return "sealed" in self.granted and self._profile is not None

    def profile(self) -> Mapping[str, Any]:
        """The customer's sealed profile (``name``, ``address``, ``contact``, ...); PermissionDeniedError unless granted."""
        if not self.readable:
            raise _denied(Message(N_("sealed profile")), self._facts["number"])
        return dict(self._profile())  # type: ignore[misc]

    def __getitem__(self, key: str) -> Any:
        return self._facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def __repr__(self) -> str:
        return f"ExportDossier({self._facts!r}, granted={sorted(self.granted)})"


class ExportDocument:
    """One document: cleartext facts as attributes, ``meta()``, ``open()`` and ``rewrap()`` when granted."""

    def __init__(self, entry: Mapping[str, Any], *, dossier: str, granted: frozenset[str],
                 table: KeyTable | None, path: Path | None, step: Callable[[int], None] | None = None) -> None:
        facts = {k: entry.get(k) for k in DOCUMENT_FACTS}
        facts["status"] = facts["status"] or "active"
        facts["dossier"] = dossier
        #: The cleartext facts as a plain dict (what a catalogue row of a non-reader holds).
        self.facts: dict[str, Any] = facts
        #: Neither superseded by a newer version nor destroyed.
        self.current = not entry.get("superseded_by") and facts["status"] != "destroyed"
        self.granted = granted
        # Closures, not attributes: the key table and the ciphertext path stay out of an exporter's reach.
        meta_blob = entry.get("meta")
        number = str(facts["number"])
        self._meta = (lambda: _read_meta(meta_blob, table, number)) if table and meta_blob else None
        self._table = (lambda: table) if table is not None else None
        self._path = (lambda: path) if path is not None else None
        self._step = step  # ciphertext bytes read, for the front end's progress bar

    def __getattr__(self, name: str) -> Any:
        facts = self.__dict__.get("facts", {})
        if name in facts:
            return facts[name]
        raise AttributeError(name)

    @property
    def readable(self) -> bool:
        """Whether this document's sealed fields are available to this export."""
        return "sealed" in self.granted and self._meta is not None

    def meta(self) -> Mapping[str, Any]:
        """Sealed ``title``, ``source``, ``filename``, ``copy_note``; PermissionDeniedError unless granted."""
        if not self.readable:
            raise _denied(Message(N_("sealed fields")), self.facts["number"])
        return self._meta()  # type: ignore[misc]

    def _content(self) -> tuple[Path, KeyTable]:
        if "content" not in self.granted or self._table is None or self._path is None:
            raise _denied("content", self.facts["number"])
        if self.facts["status"] == "destroyed":
            raise PermissionDeniedError(N_("document {number} has been destroyed"), number=self.facts['number'])
        return self._path(), self._table()

    def _what(self) -> str:
        return Message(N_("document {number}"), number=self.facts['number'])

    def open(self) -> BinaryIO:
        """The document's plaintext as a readable binary stream, authenticated chunk by chunk."""
        path, table = self._content()
        try:
            f = open_regular(path, name=self._what())
        except FileNotFoundError:
            raise IntegrityError(N_("{what}: ciphertext missing"), what=self._what()) from None
        try:
            reader = age.open_payload(counting(f, self._step) if self._step else f, [table.identity()])
        except NoIdentityMatchError:
            f.close()
            raise IntegrityError(N_("{what}: its key is not in the key table"), what=self._what()) from None
        except (FormatError, AuthenticationError):
            f.close()
            raise IntegrityError(N_("{what}: damaged or tampered with"), what=self._what()) from None
        return _Plaintext(_Named(reader, self._what()), f)

    def rewrap(self, dst: BinaryIO, recipients: Sequence[str]) -> None:
        """Write this document to ``dst`` as an age file for ``recipients`` (``age1…`` strings).

        The file key is re-wrapped and the payload bytes are copied unchanged: nothing is
        decrypted or re-encrypted, and the recipients open it with any age implementation.
        """
        path, table = self._content()
        parsed = [age.parse_recipient(r) for r in recipients]
        try:
            with open_regular(path, name=self._what()) as f:
                src = _Hashing(counting(f, self._step) if self._step else f)
                age.rewrap(cast(BinaryIO, src), dst, [table.identity()], parsed)
        except FileNotFoundError:
            raise IntegrityError(N_("{what}: ciphertext missing"), what=self._what()) from None
        except NoIdentityMatchError:
            raise IntegrityError(N_("{what}: its key is not in the key table"), what=self._what()) from None
        except (FormatError, AuthenticationError):
            raise IntegrityError(N_("{what}: damaged or tampered with"), what=self._what()) from None
        # The payload is copied, not decrypted: the ciphertext's hash in the manifest (bound to the
        # history) is what shows that the bytes copied are the document's.
        if (src.hash.hexdigest(), src.size) != (self.facts["sha256"], self.facts["size"]):
            raise IntegrityError(N_("{what}: damaged or tampered with"), what=self._what())

    def __repr__(self) -> str:
        return f"ExportDocument({self.facts['number']!r}, granted={sorted(self.granted)})"


def _read_meta(blob: str, table: KeyTable, number: str) -> dict[str, Any]:
    return open_values(blob, table, what=Message(N_("document {number} metadata"), number=number))


class _Hashing:
    """A binary reader that hashes and counts the bytes read from ``raw`` (a ciphertext being copied)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self.hash, self.size = raw, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data


class _Named(io.RawIOBase):
    """The plaintext reader, with damage found past the first chunk named as the document's."""

    def __init__(self, raw: io.RawIOBase, what: str) -> None:
        super().__init__()
        self._raw, self._what = raw, what

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(pos, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        try:
            return self._raw.readinto(buffer) or 0
        except (FormatError, AuthenticationError):
            raise IntegrityError(N_("{what}: damaged or tampered with"), what=self._what) from None

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class _Plaintext(io.BufferedReader):
    """A buffered plaintext reader that also closes the ciphertext file it reads from."""

    def __init__(self, raw: io.RawIOBase, src: BinaryIO) -> None:
        super().__init__(raw, buffer_size=1 << 16)
        self._src = src

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._src.close()

    @property
    def name(self) -> str:  # never the ciphertext's path
        return "<vault document>"


def check_destination(v: Vault, dest: Path | str) -> Path:
    """The absolute destination, refused if it lies inside the vault, exists, or has no parent directory."""
    dest = Path(os.path.abspath(dest))
    # Resolve symlinks in the parent: a link pointing into the vault must not smuggle plaintext there.
    real = dest.parent.resolve() / dest.name
    root = v.root.resolve()
    if real == root or real.is_relative_to(root) or (dest.is_symlink() and dest.resolve().is_relative_to(root)):
        raise PermissionDeniedError(N_("refusing to write an export inside the vault directory"),
                                    hint=N_("choose an output path outside the vault"))
    if dest.exists() or dest.is_symlink():
        raise _exists(dest)
    if not dest.parent.is_dir():
        raise InputError(N_("{parent} is not a directory"), hint=N_("create it first, or choose another output path"), parent=dest.parent)
    return dest


def _exists(dest: Path) -> ConflictError:
    return ConflictError(N_("{dest} already exists"), hint=N_("choose a new output path; exports never overwrite"), dest=dest)


@contextlib.contextmanager
def claimed(dest: Path, *, directory: bool) -> Iterator[None]:
    """Hold the output ``dest`` while an export is written: an empty file or directory made there only
    if nothing is, which the finished export's rename replaces.

    Whatever appears at ``dest`` after ``check_destination`` — another export to the same path, or
    what someone who can write the destination directory put there — is refused, never replaced.
    If the block fails, the claim is removed (only if it is still the claim), so nothing is left
    under the output's name.
    """
    try:
        if directory:
            os.mkdir(dest, 0o700)
        else:
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        raise _exists(dest) from None
    held = os.lstat(dest)
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            now = os.lstat(dest)
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                os.rmdir(dest) if directory else os.unlink(dest)
        raise
