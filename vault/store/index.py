"""Indexes that need no dossier key: issued archive numbers and sequence counters, and the index key.

An issued number is one small file, so a lookup costs the same with ten dossiers or ten thousand.
The index key opens the sealed search index (``vault.archive.searchindex``).
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from vault.crypto import age
from vault.errors import ConflictError, IntegrityError, NoIdentityMatchError, PermissionDeniedError, FormatError, AuthenticationError
from vault.store import fsync_dir, write_atomic, write_new

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


def index_key_path(root: Path) -> Path:
    return root / "keys" / "_index.age"


def create_index_key(root: Path, recipients: list) -> None:
    """Create the index key, encrypted to the ring recipients like a key table."""
    write_index_key(root, secrets.token_bytes(32), recipients)


def write_index_key(root: Path, key: bytes, recipients: list) -> None:
    """Replace the index key (a rotation), encrypted to the ring recipients like a key table."""
    write_atomic(index_key_path(root), age.encrypt_bytes(key, recipients), mode=0o600)


def read_index_key(root: Path, identities: list) -> bytes:
    try:
        key = age.decrypt_bytes(index_key_path(root).read_bytes(), identities)
    except FileNotFoundError:
        raise IntegrityError("keys/_index.age is missing") from None
    except NoIdentityMatchError:
        raise PermissionDeniedError("you hold no key for the search index", hint="finding by name or contact is for the archive department; try --number") from None
    except (FormatError, AuthenticationError):
        raise IntegrityError("keys/_index.age: damaged or tampered with") from None
    if len(key) != 32:
        raise IntegrityError("keys/_index.age: damaged")
    return key
