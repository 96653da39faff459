"""The records of paper originals, typed: loans, returns and inventories (``paper/``, FORMAT §3).

See ``vault.store.typed`` for how a record is read (validated) and written back (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping

from vault.store.typed import Signature, TypedRecord, order, part


@dataclass(frozen=True, slots=True)
class PaperLoan(TypedRecord):
    """``paper/loans/<L>.toml``: a paper original lent out of the archive room against an approved consultation."""

    KIND: ClassVar[str] = "paperloan"
    format: int
    number: str
    document: str
    dossier: str
    borrower: str
    #: the approved consultation request it was lent against
    request: str
    from_location: str
    at: str
    by: str
    due: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class PaperReturn(TypedRecord):
    """``paper/loans/<L>.returned.toml``: a lent original back in the archive room, at ``location``."""

    KIND: ClassVar[str] = "paperreturn"
    format: int
    loan: str
    document: str
    at: str
    by: str
    location: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Inventory(TypedRecord):
    """``paper/inventories/<I>.toml``: a periodic inventory of the paper originals and what it found."""

    KIND: ClassVar[str] = "inventory"
    format: int
    number: str
    at: str
    by: str
    #: ``{document, location}`` of each original seen where it was recorded
    found: tuple[Mapping[str, str], ...]
    #: ``{document, location, recorded}`` of each original seen elsewhere
    misplaced: tuple[Mapping[str, str], ...]
    missing: tuple[str, ...]
    out: tuple[str, ...]
    unknown: tuple[str, ...]
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()
