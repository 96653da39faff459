"""The records of legal holds, typed: a hold in force and a lifted hold (``holds/``, FORMAT §3).

See ``vault.store.typed`` for how a record is read (validated) and written back (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from vault.store.typed import Signature, TypedRecord, order, part


@dataclass(frozen=True, slots=True)
class Hold(TypedRecord):
    """``holds/<dossier-id>.toml``: a legal hold, signed by the member who placed it."""

    KIND: ClassVar[str] = "hold"
    format: int
    dossier: str
    #: the dossier's archive number when the hold was placed
    number: str
    at: str
    by: str
    #: sealed to the archive ring
    reason: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class HoldLift(TypedRecord):
    """``holds/lifted/<dossier-id>.<seq>.toml``: a hold lifted by a supervisor, naming the hold it ends."""

    KIND: ClassVar[str] = "holdlift"
    format: int
    dossier: str
    number: str
    seq: int
    hold_at: str
    hold_by: str
    hold_sha256: str
    at: str
    by: str
    #: sealed to the archive ring
    reason: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()
