"""Indexes that need no dossier key: issued archive numbers and sequence counters, and the index key.

An issued number is one small file, so a lookup costs the same with ten dossiers or ten thousand.
The index key opens the sealed search index (``vault.archive.searchindex``).
"""

from __future__ import annotations

import os  # os.urandom, as secrets does (importing secrets loads random, on every command)
from pathlib import Path
from typing import Callable

from vault.store import ids
from vault.crypto import age
from vault.errors import ConflictError, IntegrityError, NoIdentityMatchError, PermissionDeniedError, FormatError, AuthenticationError
from vault.i18n import Message, N_
from vault.store import fsync_dir, write_atomic, write_new
from vault.store.keytable import decrypt_committed
from vault.store.layout import Layout

def _number_path(root: Path, number: str) -> Path:
    return Layout(root).issued_number(number)


def issue_number(root: Path, number: str, dossier: str) -> None:
    """Record ``number`` as issued to ``dossier``; refuses a number ever issued before (even destroyed)."""
    # The entry is line-oriented; the numbering plugin layer has checked the number (no whitespace),
    # and lookup_number checks the id it reads back before anyone joins it into a path.
    p = _number_path(root, number)
    try:
        write_new(p, f"{number}\n{dossier}\n".encode(), mode=0o644)
    except FileExistsError:
        raise ConflictError(N_("archive number {number} was already issued"), hint=N_("numbers are never reused"), number=number) from None
    fsync_dir(p.parent)


def lookup_number(root: Path, number: str) -> str | None:
    """The dossier id an archive number was issued to, or None."""
    try:
        text = _number_path(root, number).read_bytes().split(b"\n")
    except FileNotFoundError:
        return None
    if len(text) < 2 or text[0] != number.encode():
        raise IntegrityError(N_("index entry for {number} is damaged"), number=number)
    # The id becomes a path (dossiers/<id>/): an entry naming anything else is forged.
    return ids.dossier_id(text[1].decode("ascii", "replace"), what=Message(N_("index entry for {number}"), number=number))


def peek_sequence(root: Path, name: str = "sequence") -> int:
    """The number counter ``name`` would allocate next, without allocating it."""
    try:
        text = (root / "index" / name).read_bytes().strip() or b"0"
    except FileNotFoundError:
        return 1
    # Digits only: int() would also take "-5", "+5", "1_000" or non-ASCII digits.
    if not text.isdigit() or len(text) > 18:
        raise IntegrityError(N_("index/{name} is damaged"), name=name)
    return int(text) + 1


def commit_sequence(root: Path, n: int, name: str = "sequence") -> None:
    """Record ``n`` as allocated (call under the exclusive vault lock)."""
    write_atomic(root / "index" / name, f"{n}\n".encode(), mode=0o644)


def allocate_number(root: Path, number_for: Callable[[int], str], dossier: str) -> tuple[int, str]:
    """Issue the next archive number, in the order of docs/FORMAT.md §11 (call under the exclusive lock).

    ``number_for(sequence)`` formats the number first: if it raises, nothing is written. The sequence
    is committed before the number is recorded, so a crash between the two leaves a gap, never a
    number that could be issued twice; a number issued before is refused (ConflictError) and its
    sequence stays used. Returns the sequence and the number.
    """
    seq = peek_sequence(root)
    number = number_for(seq)
    commit_sequence(root, seq)
    issue_number(root, number, dossier)
    return seq, number


def next_sequence(root: Path, name: str = "sequence") -> int:
    """Allocate the next number of counter ``name`` (call under the exclusive vault lock)."""
    n = peek_sequence(root, name)
    commit_sequence(root, n, name)
    return n


def index_key_path(root: Path) -> Path:
    return Layout(root).path("index_key")


def create_index_key(root: Path, recipients: list) -> None:
    """Create the index key, encrypted to the ring recipients like a key table."""
    write_index_key(root, os.urandom(32), recipients)


def write_index_key(root: Path, key: bytes, recipients: list) -> None:
    """Replace the index key (a rotation), encrypted to the ring recipients like a key table."""
    write_atomic(index_key_path(root), age.encrypt_bytes(key, recipients), mode=0o600)


def read_index_key(root: Path, identities: list) -> bytes:
    try:
        key = decrypt_committed(index_key_path(root), index_key_path(root).read_bytes(), identities)
    except FileNotFoundError:
        raise IntegrityError(N_("keys/_index.age is missing")) from None
    except NoIdentityMatchError:
        raise PermissionDeniedError(N_("you hold no key for the search index"), param="blind_index") from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("keys/_index.age: damaged or tampered with")) from None
    if len(key) != 32:
        raise IntegrityError(N_("keys/_index.age: damaged"))
    return key
