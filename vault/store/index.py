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
from vault.store.layout import Layout
from vault.store import read_regular

def _number_path(root: Path, number: str) -> Path:
    return Layout(root).issued_number(number)


def issue_number(root: Path, number: str, dossier: str, *, replace: bool = False) -> None:
    """Record ``number`` as issued to ``dossier``; refuses a number ever issued before (even destroyed),
    unless ``replace`` (the caller knows from the history that it never was: the file is a hint)."""
    # The entry is line-oriented; the numbering plugin layer has checked the number (no whitespace),
    # and lookup_number checks the id it reads back before anyone joins it into a path.
    p = _number_path(root, number)
    data = f"{number}\n{dossier}\n".encode()
    try:
        write_new(p, data, mode=0o644, sync=True)
    except FileExistsError:
        if not replace:
            raise ConflictError(N_("archive number {number} was already issued"), hint=N_("numbers are never reused"),
                                number=number) from None
        write_atomic(p, data, mode=0o644)
    fsync_dir(p.parent)


def lookup_number(root: Path, number: str) -> str | None:
    """The dossier id an archive number was issued to, or None."""
    try:
        text = read_regular(_number_path(root, number)).split(b"\n")
    except FileNotFoundError:
        return None
    if len(text) < 2 or text[0] != number.encode():
        raise IntegrityError(N_("index entry for {number} is damaged"), number=number)
    # The id becomes a path (dossiers/<id>/): an entry naming anything else is forged.
    return ids.dossier_id(text[1].decode("ascii", "replace"), what=Message(N_("index entry for {number}"), number=number))


def peek_sequence(root: Path, name: str = "sequence") -> int:
    """The number counter ``name`` would allocate next, without allocating it."""
    try:
        text = read_regular(root / "index" / name).strip() or b"0"
    except FileNotFoundError:
        return 1
    # Digits only: int() would also take "-5", "+5", "1_000" or non-ASCII digits.
    if not text.isdigit() or len(text) > 18:
        raise IntegrityError(N_("index/{name} is damaged"), name=name)
    return int(text) + 1


def commit_sequence(root: Path, n: int, name: str = "sequence") -> None:
    """Record ``n`` as allocated (call under the exclusive vault lock)."""
    write_atomic(root / "index" / name, f"{n}\n".encode(), mode=0o644)


def allocate_number(root: Path, number_for: Callable[[int], str], dossier: str, *,
                    taken: Callable[[str], bool] | None = None, floor: int = 0) -> tuple[int, str]:
    """Issue the next archive number, in the order of docs/FORMAT.md §11 (call under the exclusive lock).

    ``number_for(sequence)`` formats the number first: if it raises, nothing is written. The sequence
    is committed before the number is recorded, so a crash between the two leaves a gap, never a
    number that could be issued twice; a number issued before is refused (ConflictError) and its
    sequence stays used. Returns the sequence and the number.

    With ``taken`` (whether the history issued a number) the counter and the number files are hints:
    the sequence starts above ``floor`` and skips every number ``taken`` knows, and a number file of
    a number the history never issued is replaced.
    """
    if taken is None:
        seq = peek_sequence(root)
        number = number_for(seq)
    else:
        seq = max(_peek_or_start(root, "sequence"), floor + 1)
        number = number_for(seq)
        for _ in range(10_000):  # a damaged counter may lag far behind; the history knows the issued numbers
            if not taken(number):
                break
            seq += 1
            number = number_for(seq)
        else:
            raise ConflictError(N_("no free archive number after 10000 tries"), hint=N_("check the numbering rule"))
    commit_sequence(root, seq)
    issue_number(root, number, dossier, replace=taken is not None)
    return seq, number


def _peek_or_start(root: Path, name: str) -> int:
    # A damaged counter is a lost hint, not a damaged vault: the caller's floor (from the history) rules.
    try:
        return peek_sequence(root, name)
    except IntegrityError:
        return 1


def next_sequence(root: Path, name: str = "sequence", *, floor: int | None = None) -> int:
    """Allocate the next number of counter ``name`` (call under the exclusive vault lock).

    With ``floor`` (the highest number the history issued) the counter is a hint: the number is
    above ``floor`` whatever the counter says, and a damaged counter is skipped.
    """
    n = peek_sequence(root, name) if floor is None else max(_peek_or_start(root, name), floor + 1)
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


def read_index_key(root: Path, identities: list, data: bytes | None = None) -> bytes:
    """The index key from ``data`` (the file's bytes as the history names them) or the file."""
    try:
        key = age.decrypt_bytes(read_regular(index_key_path(root)) if data is None else data, identities)
    except FileNotFoundError:
        raise IntegrityError(N_("keys/_index.age is missing")) from None
    except NoIdentityMatchError:
        raise PermissionDeniedError(N_("you hold no key for the search index"), param="blind_index") from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("keys/_index.age: damaged or tampered with")) from None
    if len(key) != 32:
        raise IntegrityError(N_("keys/_index.age: damaged"))
    return key
