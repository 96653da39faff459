"""The records of a disaster-recovery export, typed: its request, second approval and completion (``recovery/``, FORMAT §3).

See ``vault.store.typed`` for how a record is read (validated) and written back (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from vault.store.typed import Signature, TypedRecord, order, part


@dataclass(frozen=True, slots=True)
class RecoveryRequest(TypedRecord):
    """``recovery/<E>.toml``: a whole-vault export to ``recipients``, asked for (the first approval) by a supervisor."""

    KIND: ClassVar[str] = "recovery"
    format: int
    number: str
    #: age recipients of the offline recovery keys
    recipients: tuple[str, ...]
    requested_by: str
    requested_at: str
    expires_at: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class RecoveryApproval(TypedRecord):
    """``recovery/<E>.approval.toml``: the second approval, by another supervisor, of the request with this hash."""

    KIND: ClassVar[str] = "recoveryapproval"
    format: int
    export: str
    request_sha256: str
    by: str
    at: str
    expires_at: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class RecoveryDone(TypedRecord):
    """``recovery/<E>.done.toml``: the export written, with the hash of its signed manifest and what it holds."""

    KIND: ClassVar[str] = "recoverydone"
    format: int
    export: str
    request_sha256: str
    approval_sha256: str
    by: str
    at: str
    manifest_sha256: str
    dossiers: int
    documents: int
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()
