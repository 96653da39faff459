"""The states of the office's records, one enumeration each (their values are what records, the history and ``--json`` say)."""

from __future__ import annotations

from enum import StrEnum


class MemberStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class DossierStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    DESTROYED = "destroyed"


class RequestState(StrEnum):
    """A consultation or copy request: waiting for its department head, decided, then granted or used."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    GRANTED = "granted"
    USED = "used"


class GrantState(StrEnum):
    """A grant: active until it expires, or closed by the history (how is the rest of the values)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    EXPIRED_SWEPT = "expired-swept"
    MEMBER_REMOVED = "member-removed"
    DESTROYED = "destroyed"


class DestructionState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    DENIED = "denied"
    EXECUTING = "executing"
    EXECUTED = "executed"


class RecoveryExportState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    WRITTEN = "written"
    EXPIRED = "expired"
