"""The pure rules as tables: retention schedules [R-3.3.2], review due dates [R-3.5.1], completeness [R-1.3.2].

Each rule is a function of the policy, a manifest (or a document of it) and a date; each row below
is one case with the answer written out, so a change to a rule shows up as a changed row.
"""

from __future__ import annotations

import datetime as dt

import pytest

from vault.archive import completeness, reviews, schedule
from vault.archive.policy import DEFAULT_POLICY

TODAY = "2030-06-01"


def dossier(*docs: dict, customer_type: str = "enterprise", klass: str = "enterprise/network-services/2026",
            created: str = "2026-01-01", closed: str | None = None) -> dict:
    m = {"number": "E-2026-000001", "customer_type": customer_type, "class": klass, "created": created,
         "dept": "sales", "documents": list(docs)}
    if closed:
        m["closed"] = closed
    return m


def doc(category: str, *, date: str = "2020-01-15", events: dict | None = None, **extra) -> dict:
    return {"number": "E-2026-000001/0001", "category": category, "date": date, "events": events or {}, **extra}


# -- retention ------------------------------------------------------------------------------------

CONTRACT_RULES = {"retention": [
    {"name": "network", "categories": ["contract"], "event": "document-date", "years": 3,
     "class_prefix": "enterprise/network-services"},
    {"name": "people", "categories": ["contract"], "event": "document-date", "years": 7,
     "customer_types": ["individual"]},
    {"name": "rest", "categories": ["contract"], "event": "contract-fulfilled", "years": 10},
]}


@pytest.mark.parametrize(("case", "policy", "m", "d", "want"), [
    ("fulfilled ten years ago yesterday: due", DEFAULT_POLICY, dossier(),
     doc("contract", events={"contract-fulfilled": "2020-05-31"}), ("contracts", "2030-05-31", "due")),
    ("ends today: due", DEFAULT_POLICY, dossier(),
     doc("contract", events={"contract-fulfilled": "2020-06-01"}), ("contracts", "2030-06-01", "due")),
    ("ends tomorrow: kept", DEFAULT_POLICY, dossier(),
     doc("contract", events={"contract-fulfilled": "2020-06-02"}), ("contracts", "2030-06-02", "kept")),
    ("not yet fulfilled: waiting", DEFAULT_POLICY, dossier(), doc("contract"), ("contracts", None, "waiting")),
    ("closed five years ago: due", DEFAULT_POLICY, dossier(closed="2025-06-01"), doc("basic-info"),
     ("general", "2030-06-01", "due")),
    ("dossier still open: waiting", DEFAULT_POLICY, dossier(), doc("feedback"), ("general", None, "waiting")),
    ("29 February plus five years is 28 February", DEFAULT_POLICY, dossier(closed="2024-02-29"),
     doc("communication"), ("general", "2029-02-28", "due")),
    ("no rule covers the category", {"retention": []}, dossier(), doc("contract"), (None, None, "no-rule")),
    ("the first rule that matches wins (class prefix)", CONTRACT_RULES, dossier(), doc("contract", date="2027-06-01"),
     ("network", "2030-06-01", "due")),
    ("another class falls through to a later rule", CONTRACT_RULES,
     dossier(klass="enterprise/software-development/2026"), doc("contract"), ("rest", None, "waiting")),
    ("customer type filter", CONTRACT_RULES, dossier(customer_type="individual", klass="individual/x/2026"),
     doc("contract", date="2023-06-02"), ("people", "2030-06-02", "kept")),
])
def test_retention_schedule(case, policy, m, d, want):
    row = schedule.schedule(m, d, policy, today=TODAY)
    assert (row["rule"], row.get("until"), row["status"]) == want, case


# -- review ---------------------------------------------------------------------------------------

NESTED = {"review": {"default_days": 365, "classes": {"enterprise": 180, "enterprise/network-services": 90}}}


@pytest.mark.parametrize(("policy", "klass", "days"), [
    (DEFAULT_POLICY, "enterprise/network-services/2026", 180),
    (DEFAULT_POLICY, "enterprises/network-services/2026", 365),  # prefixes match whole segments
    (DEFAULT_POLICY, "individual/software-development/2026", 365),
    (NESTED, "enterprise/network-services/2026", 90),  # the longest matching prefix wins
    (NESTED, "enterprise/software-development/2026", 180),
    ({}, "enterprise/x", 365),  # no review section: a year
])
def test_review_interval(policy, klass, days):
    assert reviews.interval_days(policy, klass) == days


def review(at: str, outcome: str) -> dict:
    return {"at": at, "outcome": outcome}


@pytest.mark.parametrize(("case", "history", "today", "want"), [
    ("never reviewed, the day before it falls due", [], "2026-06-29", ("2026-06-30", False, False)),
    ("never reviewed, due today: stale", [], "2026-06-30", ("2026-06-30", True, False)),
    ("verified: the interval restarts", [review("2026-06-15T10:00:00Z", "verified")], "2026-07-01",
     ("2026-12-12", False, False)),
    ("needs an update: listed until a later review verifies it",
     [review("2026-03-01T10:00:00Z", "needs-update")], "2026-04-01", ("2026-08-28", False, True)),
    ("the newest review counts",
     [review("2026-03-01T10:00:00Z", "needs-update"), review("2026-04-01T10:00:00Z", "verified")], "2026-04-02",
     ("2026-09-28", False, False)),
])
def test_review_state(case, history, today, want):
    row = reviews.state(DEFAULT_POLICY, dossier(), history, dt.date.fromisoformat(today))
    assert (row["due_on"], row["stale"], row["needs_update"]) == want, case
    assert row["stale_since"] == (row["due_on"] if row["stale"] else None)


# -- completeness ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "m", "missing"), [
    ("enterprise with both categories", dossier(doc("basic-info"), doc("contract")), []),
    ("enterprise without a contract", dossier(doc("basic-info")), ["contract"]),
    ("a superseded contract does not count", dossier(doc("basic-info"), doc("contract", superseded_by="x/0002")),
     ["contract"]),
    ("a destroyed contract does not count", dossier(doc("basic-info"), doc("contract", status="destroyed")),
     ["contract"]),
    ("an individual needs basic information only", dossier(doc("basic-info"), customer_type="individual"), []),
    ("an empty dossier lacks every category", dossier(), ["basic-info", "contract"]),
])
def test_missing_categories(case, m, missing):
    assert completeness.missing_categories(DEFAULT_POLICY, m) == missing, case


@pytest.mark.parametrize(("case", "profile", "missing"), [
    ("all there", {"name": "N", "contact": ["c"], "legal_rep": "L"}, []),
    ("blank strings are missing", {"name": "N", "contact": ["  "], "legal_rep": ""}, ["contact", "legal_rep"]),
    ("an empty list is missing", {"name": "N", "contact": [], "legal_rep": "L"}, ["contact"]),
    ("absent fields are missing", {}, ["name", "contact", "legal_rep"]),
])
def test_missing_fields(case, profile, missing):
    assert completeness.missing_fields(DEFAULT_POLICY, dossier(), profile) == missing, case


def test_assess_names_the_gaps_and_since_when():
    incomplete = completeness.assess(DEFAULT_POLICY, dossier(doc("basic-info")), lambda m: ["legal_rep"])
    assert (incomplete["complete"], incomplete["incomplete_since"]) == (False, "2026-01-01")
    assert (incomplete["missing_categories"], incomplete["missing_fields"]) == (["contract"], ["legal_rep"])
    unread = completeness.assess(DEFAULT_POLICY, dossier(doc("basic-info"), doc("contract")), lambda m: None)
    assert (unread["fields_checked"], unread["complete"], unread["note"]) == (False, True, completeness.FIELDS_NEED_READ)
    whole = completeness.assess(DEFAULT_POLICY, dossier(doc("basic-info"), doc("contract")), lambda m: [])
    assert (whole["complete"], whole["incomplete_since"]) == (True, None)
