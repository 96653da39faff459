"""The records of a destruction's procedure, typed: its request, approval and closing (``destructions/``, FORMAT §3).

The execution journal and the certificate stay tables (``vault.archive.destructions``): the journal
is the working record the execution adds to step by step. See ``vault.store.typed`` for how a
record is read (validated) and written back (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from vault.store.typed import Signature, TypedRecord, order, part


@dataclass(frozen=True, slots=True)
class Destruction(TypedRecord):
    """``destructions/<D>.toml``: a destruction request for a dossier or a document, signed by the requester."""

    KIND: ClassVar[str] = "destruction"
    format: int
    number: str
    #: an archive number (the whole dossier) or a document number
    target: str
    dossier: str
    requested_by: str
    requested_at: str
    #: sealed to the archive ring
    reason: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()

    @property
    def whole_dossier(self) -> bool:
        return "/" not in self.target


@dataclass(frozen=True, slots=True)
class DestructionApproval(TypedRecord):
    """``destructions/<D>.approval.toml``: a supervisor other than the requester approves the request
    with this hash, possibly overriding the retention (the sealed reason)."""

    KIND: ClassVar[str] = "approval"
    format: int
    destruction: str
    request_sha256: str
    by: str
    at: str
    signature: Signature = field(metadata=part(Signature))
    override_retention: str | None = None
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class DestructionClosed(TypedRecord):
    """``destructions/<D>.closed.toml``: the request cancelled (requester or supervisor) or denied (another supervisor)."""

    KIND: ClassVar[str] = "destructionclose"
    format: int
    destruction: str
    request_sha256: str
    outcome: str
    by: str
    at: str
    #: sealed to the requester and who closed it
    reason: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()
