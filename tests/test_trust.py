"""The table of who may sign which record [R-2.1, R-3.3.2, R-3.4.1, R-3.4.2], as a table test."""

from __future__ import annotations

import pytest

from vault.archive import trust
from vault.archive.policy import ROLES


def member(name: str, *roles: str, dept: str = "sales") -> dict:
    return {"name": name, "roles": list(roles), "dept": dept}


HEAD = member("erin", "dept-head")
OTHER_HEAD = member("olav", "dept-head", dept="support")
SUPERVISOR = member("alice", "supervisor", dept="archive")
ARCHIVIST = member("bob", "archivist", dept="archive")
STAFF = member("dave", "staff")


@pytest.mark.parametrize(("kind", "signer", "dept", "requester", "allowed"), [
    # An access request is decided by a head of the requester's department, never by the requester.
    ("access-decision", HEAD, "sales", "dave", True),
    ("access-decision", OTHER_HEAD, "sales", "dave", False),
    ("access-decision", HEAD, "sales", "erin", False),
    ("access-decision", SUPERVISOR, "sales", "dave", False),
    ("access-decision", STAFF, "sales", "dave", False),
    # A copy is approved by a supervisor other than the requester.
    ("copy-decision", SUPERVISOR, "sales", "dave", True),
    ("copy-decision", SUPERVISOR, "archive", "alice", False),
    ("copy-decision", HEAD, "sales", "dave", False),
    # Grants: archivists and supervisors.
    ("grant", ARCHIVIST, None, None, True),
    ("grant", SUPERVISOR, None, None, True),
    ("grant", HEAD, None, None, False),
    # Destruction: a supervisor other than the requester approves; a supervisor certifies.
    ("destruction-approval", SUPERVISOR, None, "sam", True),
    ("destruction-approval", SUPERVISOR, None, "alice", False),
    ("destruction-approval", ARCHIVIST, None, "sam", False),
    ("destruction-certificate", SUPERVISOR, None, None, True),
    ("destruction-certificate", ARCHIVIST, None, None, False),
    # Membership, rings and policy: supervisors only.
    ("member", SUPERVISOR, None, None, True),
    ("member", ARCHIVIST, None, None, False),
    ("ring", HEAD, None, None, False),
    ("policy", SUPERVISOR, None, None, True),
    ("policy", member("mallory", "auditor", "operator"), None, None, False),
    # Records any member signs as their own.
    ("request", STAFF, None, None, True),
    ("hold", HEAD, None, None, True),
    ("review", STAFF, None, None, True),
])
def test_who_may_sign(kind, signer, dept, requester, allowed):
    assert trust.may_sign(kind, signer, dept=dept, requester=requester) is allowed


def test_the_table_names_only_known_roles():
    for kind, rule in trust.SIGNERS.items():
        assert rule.roles <= set(ROLES), f"{kind} names an unknown role"


def test_an_unknown_record_kind_is_an_error_not_a_pass():
    with pytest.raises(KeyError):
        trust.may_sign("grants", SUPERVISOR)
