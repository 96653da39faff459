"""Who may sign which record: the one table every procedure and ``vault check`` read [R-2.1, R-3.3.2, R-3.4].

The policy says who may *do* what (``policy.toml``, changeable by a supervisor). This table says whose
signature a record needs to *count*: a validly signed record from the wrong member, written straight
into the vault directory, must unlock nothing. It is code, not policy, because a policy update is
itself a record this table judges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SignerRule:
    """Who may sign one kind of record."""

    #: The signer holds one of these roles; empty means any member.
    roles: frozenset[str] = frozenset()
    #: The signer belongs to the department the record concerns.
    same_dept: bool = False
    #: The signer is not the member who asked for what the record decides.
    not_requester: bool = False


ANY_MEMBER = SignerRule()

#: Record kind -> who may sign it. Records signed by "any member" are still verified against a
#: member's key; where the record names its author (``by``), the signature must be theirs.
SIGNERS: Mapping[str, SignerRule] = {
    "member": SignerRule(frozenset({"supervisor"})),              # members/<name>.toml
    "ring": SignerRule(frozenset({"supervisor"})),                # rings/<ring>.toml
    "policy": SignerRule(frozenset({"supervisor"})),              # policy.toml after an update
    "manifest": ANY_MEMBER,                                       # dossiers/<id>/manifest.toml
    "request": ANY_MEMBER,                                        # requests/R-*.toml (the requester)
    "access-decision": SignerRule(frozenset({"dept-head"}), same_dept=True, not_requester=True),
    "copy-decision": SignerRule(frozenset({"supervisor"}), not_requester=True),
    "request-used": ANY_MEMBER,                                   # requests/R-*.used.toml
    "grant": SignerRule(frozenset({"archivist", "supervisor"})),  # grants/G-*.toml
    "grant-closed": ANY_MEMBER,                                   # grants/G-*.closed.toml
    "hold": ANY_MEMBER,                                           # holds/<id>.toml
    "destruction-request": ANY_MEMBER,                            # destructions/D-*.toml
    "destruction-approval": SignerRule(frozenset({"supervisor"}), not_requester=True),
    "destruction-certificate": SignerRule(frozenset({"supervisor"})),
    "review": ANY_MEMBER,                                         # reviews/<id>/<seq>.toml (the reviewer)
    "intake-rejection": ANY_MEMBER,                               # intake/<id>.rejected.toml
    "audit-checkpoint": ANY_MEMBER,                               # audit/checkpoint.toml
}


def may_sign(kind: str, signer: Mapping[str, Any], *, dept: str | None = None,
             requester: str | None = None) -> bool:
    """Whether ``signer`` (a member record) may sign a record of ``kind``.

    :param dept: the department the record concerns, for rules that need the signer's own.
    :param requester: the member who asked, for rules that forbid deciding one's own request.
    """
    rule = SIGNERS[kind]
    if rule.roles and not rule.roles & set(signer["roles"]):
        return False
    if rule.same_dept and signer["dept"] != dept:
        return False
    return not (rule.not_requester and signer["name"] == requester)
