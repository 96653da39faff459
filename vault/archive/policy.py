"""Roles, what each may do, and which roles hold the archive's read keys (``policy.toml``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from vault.errors import PermissionDeniedError
from vault.i18n import N_

ROLES = ("supervisor", "archivist", "liaison", "staff", "dept-head", "auditor", "backup", "operator")

# Actions the command layer checks. Reading is also enforced by encryption: only members of the
# rings named in [rings] (and grantees) hold keys; a policy edit cannot hand out keys by itself.
ACTIONS = (
    "member.manage",
    "dossier.create",
    "dossier.list",
    "dossier.read",  # read every dossier without a grant (the archive department)
    "doc.add",
    "doc.view",
    "doc.save",  # write plaintext to a file or pipe without a copy approval
    "find",
    "check",
    "request.create",
    "request.approve-access",  # a department head, for requests from their own department
    "request.approve-copy",  # the archive head
    "grant.manage",  # grant, revoke
    "grant.sweep",
    "intake.manage",
    "intake.invite",  # invite a customer to the online platform; a liaison only for their department
    "audit.read",
    "retention.read",
    "hold.manage",
    "destroy.request",
    "destroy.approve",  # a supervisor other than the requester
    "destroy.execute",
    "review.read",  # see what periodic review and completeness checks found
    "review.record",  # record a dossier as reviewed: verified, or needing an update
    "dossier.update",  # write a new sealed profile version
    "policy.manage",  # replace the policy (signed); supervisors only by default
)

DEFAULT_POLICY: dict[str, Any] = {
    "format": 1,
    "roles": {
        "supervisor": {
            "description": "archive supervisor: plans the archive work, directs archivists [R-2.1]",
            "may": list(ACTIONS),
        },
        "archivist": {
            "description": "classifies, numbers, binds and enters records [R-2.1]",
            "may": ["dossier.create", "dossier.list", "dossier.read", "doc.add", "doc.view", "doc.save", "find",
                    "check", "request.create", "grant.manage", "grant.sweep", "intake.manage",
                    "intake.invite", "retention.read", "hold.manage", "destroy.request", "review.read", "review.record",
                    "dossier.update"],
        },
        "liaison": {
            "description": "part-time archive liaison of a business department [R-2.2]",
            "may": ["dossier.list", "doc.view", "request.create", "review.read", "dossier.update", "intake.invite"],
        },
        "staff": {
            "description": "business staff who collect customer material [R-2.2]",
            "may": ["dossier.list", "doc.view", "request.create"],
        },
        "dept-head": {
            "description": "head of a business department; approves consultations [R-3.4.1]",
            "may": ["dossier.list", "doc.view", "request.create", "request.approve-access", "review.read"],
        },
        "auditor": {
            "description": "verifies the archive and its trail; reads no dossier",
            "may": ["dossier.list", "check", "audit.read", "review.read"],
        },
        "backup": {"description": "unattended backup job; holds no key that reads a dossier [R-3.3.1]", "may": ["check"]},
        "operator": {
            "description": "technology department: keeps the system running [R-2.3]",
            "may": ["check", "grant.sweep", "audit.read", "review.read"],
        },
    },
    "rings": {
        "archive": {
            "description": "the archive department: holds the read keys of every dossier [R-2.1]",
            "roles": ["supervisor", "archivist"],
        }
    },
    # leaves the years blank ("[X] years"); these defaults are a starting point for the
    # office to set its own, and every rule applied is named in reports and certificates.
    "retention": [
        {
            "name": "contracts",
            "description": "important business contracts: kept 10 years after the contract is fulfilled",
            "categories": ["contract"],
            "event": "contract-fulfilled",
            "years": 10,
        },
        {
            "name": "general",
            "description": "general customer information: kept 5 years after the dossier is closed",
            "categories": ["basic-info", "service-record", "communication", "feedback", "other"],
            "event": "dossier-closed",
            "years": 5,
        },
    ],
    # What a right means, where its name does not say it all.
    "rights": {
        "doc.save": {
            "description": "write a document's plaintext anywhere but a terminal (a file or a pipe) "
                           "without a copy request; it is still logged as a copy [R-3.4.2]. Held by the "
                           "archive department (supervisor, archivist), who keep, bind and restore the "
                           "archive [R-2.1, R-3.2.3]; every other role copies only with the archive "
                           "head's approval of a copy request",
        },
    },
    # has the head of the requester's department approve; no one approves their own request,
    # so a department head's own consultation request goes to the archive supervisor.
    "requests": {
        "head_request_approver": "supervisor",
        "description": "a department head's own consultation request is decided by an archive supervisor",
    },
    # how often the archive department checks a dossier, by class-path prefix.
    "review": {"default_days": 365, "classes": {"enterprise": 180}},
    # what a complete dossier holds, per customer type.
    "completeness": {
        "enterprise": {"categories": ["basic-info", "contract"], "fields": ["name", "contact", "legal_rep"]},
        "individual": {"categories": ["basic-info"], "fields": ["name", "contact"]},
    },
}


@dataclass(frozen=True)
class Policy:
    """A validated policy document."""

    data: Mapping[str, Any]

    def may(self, roles: Iterable[str], action: str) -> bool:
        return any(action in self.data["roles"].get(r, {}).get("may", ()) for r in roles)

    def require(self, member: str, roles: Iterable[str], action: str) -> None:
        roles = list(roles)
        if not self.may(roles, action):
            raise PermissionDeniedError(
                N_("member {member} ({roles}) may not {action}"),
                hint=N_("ask a supervisor; roles and their rights are declared in policy.toml"), member=member, roles=', '.join(roles) or '-', action=action,
            )

    def head_request_approver(self) -> str:
        """The role that decides a department head's own consultation request (a policy written
        before the rule existed gets the default)."""
        return str(self.data.get("requests", DEFAULT_POLICY["requests"])["head_request_approver"])

    def ring_roles(self, ring: str) -> list[str]:
        return list(self.data["rings"][ring]["roles"])

    def rings_for(self, roles: Iterable[str]) -> list[str]:
        roles = set(roles)
        return sorted(name for name, r in self.data["rings"].items() if roles & set(r["roles"]))
