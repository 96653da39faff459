"""Indexes that need no dossier key: issued archive numbers, and keyed blind indexes for ``find``.

Both are one small file per entry, so a lookup costs the same with ten dossiers or ten thousand.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

from vault.crypto import age
from vault.errors import ConflictError, IntegrityError, NoIdentityMatchError, PermissionDeniedError, FormatError, AuthenticationError
from vault.store import fsync_dir, write_atomic, write_new

# Blind-index tokens are truncated to 32 bits: enough that ten thousand dossiers rarely share one
# (find then decrypts the few candidates to confirm), short enough that a token alone does not
# pin a value down across a large population.
BLIND_TOKEN_BYTES = 4
BLIND_FIELDS = ("name", "contact")


def _number_path(root: Path, number: str) -> Path:
    h = hashlib.sha256(number.encode()).hexdigest()
    return root / "index" / "numbers" / h[:2] / h


def issue_number(root: Path, number: str, dossier: str) -> None:
    """Record ``number`` as issued to ``dossier``; refuses a number ever issued before (even destroyed)."""
    p = _number_path(root, number)
    try:
        write_new(p, f"{number}\n{dossier}\n".encode(), mode=0o644)
    except FileExistsError:
        raise ConflictError(f"archive number {number} was already issued", hint="numbers are never reused") from None
    fsync_dir(p.parent)


def lookup_number(root: Path, number: str) -> str | None:
    """The dossier id an archive number was issued to, or None."""
    try:
        text = _number_path(root, number).read_text().split("\n")
    except FileNotFoundError:
        return None
    if text[0] != number:
        raise IntegrityError(f"index entry for {number} is damaged")
    return text[1]


def peek_sequence(root: Path, name: str = "sequence") -> int:
    """The number counter ``name`` would allocate next, without allocating it."""
    try:
        return int((root / "index" / name).read_text().strip() or 0) + 1
    except FileNotFoundError:
        return 1
    except ValueError:
        raise IntegrityError(f"index/{name} is damaged") from None


def commit_sequence(root: Path, n: int, name: str = "sequence") -> None:
    """Record ``n`` as allocated (call under the exclusive vault lock)."""
    write_atomic(root / "index" / name, f"{n}\n".encode(), mode=0o644)


def next_sequence(root: Path, name: str = "sequence") -> int:
    """Allocate the next number of counter ``name`` (call under the exclusive vault lock)."""
    n = peek_sequence(root, name)
    commit_sequence(root, n, name)
    return n


def normalize(field: str, value: str) -> str:
    """The form a value is indexed in: NFKC, case-folded, spaces collapsed; contacts lose separators."""
    v = unicodedata.normalize("NFKC", value).casefold()
    v = " ".join(v.split())
    if field == "contact" and "@" not in v:
        v = re.sub(r"[\s\-().]", "", v)
    return v


class BlindIndex:
    """Keyed, truncated HMAC tokens -> dossier ids (CipherSweet-style blind indexes)."""

    def __init__(self, root: Path, key: bytes) -> None:
        self.dir = root / "index" / "blind"
        self.key = key

    def token(self, field: str, value: str) -> str:
        mac = hmac.new(self.key, f"{field}\0{normalize(field, value)}".encode(), hashlib.sha256)
        return mac.hexdigest()[: BLIND_TOKEN_BYTES * 2]

    def _path(self, field: str, value: str) -> Path:
        t = self.token(field, value)
        return self.dir / t[:2] / t

    def lookup(self, field: str, value: str) -> list[str]:
        try:
            return self._path(field, value).read_text().split()
        except FileNotFoundError:
            return []

    def add(self, field: str, value: str, dossier: str) -> None:
        p = self._path(field, value)
        ids = self.lookup(field, value)
        if dossier not in ids:
            write_atomic(p, ("\n".join([*ids, dossier]) + "\n").encode(), mode=0o644)

    def remove(self, field: str, value: str, dossier: str) -> None:
        p = self._path(field, value)
        ids = [i for i in self.lookup(field, value) if i != dossier]
        if ids:
            write_atomic(p, ("\n".join(ids) + "\n").encode(), mode=0o644)
        elif p.exists():
            os.unlink(p)


def index_key_path(root: Path) -> Path:
    return root / "keys" / "_index.age"


def create_index_key(root: Path, recipients: list) -> None:
    """Create the blind-index key, encrypted to the ring recipients like a key table."""
    write_atomic(index_key_path(root), age.encrypt_bytes(secrets.token_bytes(32), recipients), mode=0o600)


def read_index_key(root: Path, identities: list) -> bytes:
    try:
        key = age.decrypt_bytes(index_key_path(root).read_bytes(), identities)
    except FileNotFoundError:
        raise IntegrityError("keys/_index.age is missing") from None
    except NoIdentityMatchError:
        raise PermissionDeniedError("you hold no key for the search index", hint="find by name or contact is for the archive department; try --number") from None
    except (FormatError, AuthenticationError):
        raise IntegrityError("keys/_index.age: damaged or tampered with") from None
    if len(key) != 32:
        raise IntegrityError("keys/_index.age: damaged")
    return key
