"""The records of consultation and copy: requests, their decisions, resolutions and uses, grants and their closings, typed.

One frozen dataclass per record kind of FORMAT §3 (``schemas/<kind>.schema.json``); see
``vault.store.typed`` for how a record is read (validated) and written back (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from vault.store.typed import Signature, TypedRecord, order, part


@dataclass(frozen=True, slots=True)
class Request(TypedRecord):
    """``requests/<R>.toml``: a consultation (``access``) or ``copy`` request, signed by its requester.

    ``target`` and ``dossier`` are empty for a request by customer name (``customer`` set)."""

    KIND: ClassVar[str] = "request"
    format: int
    number: str
    kind: str
    target: str
    dossier: str
    requester: str
    dept: str
    created_at: str
    #: sealed (``members.seal_text``): free text may name customers
    purpose: str
    signature: Signature = field(metadata=part(Signature))
    #: a department head's own consultation request: the role that decides it
    approver_role: str | None = None
    #: the customer's name, sealed to the archive ring and the department heads
    customer: str | None = None
    keys_: tuple[str, ...] = order()

    @property
    def by_name(self) -> bool:
        """Whether the request names a customer instead of an archive number."""
        return self.customer is not None


@dataclass(frozen=True, slots=True)
class Decision(TypedRecord):
    """``requests/<R>.decision.toml``: the approval or denial of a request, signed by the approver."""

    KIND: ClassVar[str] = "decision"
    format: int
    request: str
    request_sha256: str
    decision: str
    by: str
    at: str
    signature: Signature = field(metadata=part(Signature))
    #: a denial's reason, sealed to the requester and the decider
    reason: str | None = None
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Resolution(TypedRecord):
    """``requests/<R>.resolution.toml``: the archivist's resolution of a request by name to one dossier."""

    KIND: ClassVar[str] = "resolution"
    format: int
    request: str
    request_sha256: str
    dossier: str
    number: str
    by: str
    at: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Used(TypedRecord):
    """``requests/<R>.used.toml``: a copy approval used up by an export, signed by the requester."""

    KIND: ClassVar[str] = "used"
    format: int
    request: str
    at: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Grant(TypedRecord):
    """``grants/<G>.toml``: a key release for an approved consultation until ``expires_at``, signed by the granter."""

    KIND: ClassVar[str] = "grant"
    format: int
    number: str
    request: str
    dossier: str
    target: str
    grantee: str
    granted_at: str
    expires_at: str
    approval_sha256: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class GrantClosed(TypedRecord):
    """``grants/<G>.closed.toml``: a grant revoked or swept after expiry, signed by who closed it."""

    KIND: ClassVar[str] = "closed"
    format: int
    grant: str
    reason: str
    by: str
    at: str
    signature: Signature = field(metadata=part(Signature))
    keys_: tuple[str, ...] = order()
