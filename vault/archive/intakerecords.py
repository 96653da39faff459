"""The records of the intake, typed: a pending submission and a rejected one (``intake/``, FORMAT §3).

See ``vault.store.typed`` for how a record is read (validated) and written back (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from vault.store.typed import Signature, TypedRecord, key, order, part


@dataclass(frozen=True, slots=True)
class Submission(TypedRecord):
    """``intake/<id>.toml``: a pending write-only submission (unsigned: anyone may submit), its
    ciphertext ``intake/<id>.age`` of ``size`` bytes and hash ``sha256``."""

    KIND: ClassVar[str] = "intake"
    format: int
    id: str
    #: the archive number (or document number) it is filed for
    for_: str = field(metadata=key("for"))
    category: str
    date: str
    original: bool
    submitted_at: str
    size: int
    sha256: str
    #: the metadata, encrypted to the intake key
    sealed: str
    #: the invitation it came through (the online platform)
    invitation: str | None = None
    receipt: str | None = None
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Rejection(TypedRecord):
    """``intake/<id>.rejected.toml``: a rejected submission, signed by the archivist (the reason sealed)."""

    KIND: ClassVar[str] = "rejected"
    format: int
    id: str
    for_: str = field(metadata=key("for"))
    by: str
    at: str
    reason: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()
