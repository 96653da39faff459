"""The pure rules as tables: retention schedules [R-3.3.2], review due dates [R-3.5.1], completeness [R-1.3.2].

Each rule is a function of the policy, a manifest (or a document of it) and a date; each row below
is one case with the answer written out and the rule it follows, so a change to a rule shows up as a
changed row. As in restic's policy tests, one shared archive is also run through every retention
policy and the whole answer, reasons included, compared with a reviewed file under
``vectors/rules/`` (``pytest --update-golden`` rewrites those files; review the diff before
committing it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from vault.archive import completeness, reviews, schedule
from vault.archive.manifestrecord import Document, Manifest
from vault.archive.policy import DEFAULT_POLICY
from vault.archive.states import DossierStatus
from vault.store.typed import Signature

TODAY = "2030-06-01"


def dossier(*docs: Document, customer_type: str = "enterprise", klass: str = "enterprise/network-services/2026",
            created: str = "2026-01-01", closed: str | None = None) -> Manifest:
    """A manifest with the facts the rules read; the rest are placeholders no rule looks at."""
    return Manifest(format=1, id="0" * 32, number="E-2026-000001", customer_type=customer_type, business="x",
                    dept="sales", class_=klass, created=created, created_at=f"{created}T00:00:00Z", created_by="bob",
                    status=DossierStatus.CLOSED if closed else DossierStatus.OPEN, revision=1,
                    next_doc=len(docs) + 1, profile=(), documents=docs, updated_at=f"{created}T00:00:00Z",
                    updated_by="bob", signature=Signature(by="bob", ed25519=""), closed=closed)


def doc(category: str, *, date: str = "2020-01-15", events: dict | None = None, superseded_by: str | None = None,
        status: str | None = None) -> Document:
    """A document with the facts the rules read (category, dates, events, supersession, status)."""
    return Document(number="E-2026-000001/0001", id="1" * 32, category=category, date=date, original=True, version=1,
                    added_at="2026-01-01T00:00:00Z", added_by="bob", size=0, sha256="0" * 64, events=events or {},
                    superseded_by=superseded_by, status=status)


# -- retention ------------------------------------------------------------------------------------

CONTRACT_RULES = {"retention": [
    {"name": "network", "categories": ["contract"], "event": "document-date", "years": 3,
     "class_prefix": "enterprise/network-services"},
    {"name": "people", "categories": ["contract"], "event": "document-date", "years": 7,
     "customer_types": ["individual"]},
    {"name": "rest", "categories": ["contract"], "event": "contract-fulfilled", "years": 10},
]}


@pytest.mark.parametrize(("case", "policy", "m", "d", "want"), [
    ("[R-3.3.2] a contract fulfilled ten years ago yesterday: due", DEFAULT_POLICY, dossier(),
     doc("contract", events={"contract-fulfilled": "2020-05-31"}), ("contracts", "2030-05-31", "due")),
    ("[R-3.3.2] a contract whose ten years end today: due", DEFAULT_POLICY, dossier(),
     doc("contract", events={"contract-fulfilled": "2020-06-01"}), ("contracts", "2030-06-01", "due")),
    ("[R-3.3.2] a contract whose ten years end tomorrow: kept", DEFAULT_POLICY, dossier(),
     doc("contract", events={"contract-fulfilled": "2020-06-02"}), ("contracts", "2030-06-02", "kept")),
    ("[R-3.3.2] a contract not yet fulfilled: waiting", DEFAULT_POLICY, dossier(), doc("contract"), ("contracts", None, "waiting")),
    ("[R-3.3.2] general information five years after closing: due", DEFAULT_POLICY, dossier(closed="2025-06-01"), doc("basic-info"),
     ("general", "2030-06-01", "due")),
    ("[R-3.3.2] general information of an open dossier: waiting", DEFAULT_POLICY, dossier(), doc("feedback"), ("general", None, "waiting")),
    ("[R-3.3.2] closed on 29 February: five years end on 28 February", DEFAULT_POLICY, dossier(closed="2024-02-29"),
     doc("communication"), ("general", "2029-02-28", "due")),
    ("[R-3.3.2] no rule covers the category: nothing to schedule", {"retention": []}, dossier(), doc("contract"), (None, None, "no-rule")),
    ("[R-3.3.2] [R-3.2.1] the first rule that matches wins (class prefix)", CONTRACT_RULES, dossier(), doc("contract", date="2027-06-01"),
     ("network", "2030-06-01", "due")),
    ("[R-3.3.2] [R-3.2.1] another class falls through to a later rule", CONTRACT_RULES,
     dossier(klass="enterprise/software-development/2026"), doc("contract"), ("rest", None, "waiting")),
    ("[R-3.3.2] [R-3.2.1] a rule for one customer type, from the material's date [R-3.1.3]", CONTRACT_RULES, dossier(customer_type="individual", klass="individual/x/2026"),
     doc("contract", date="2023-06-02"), ("people", "2030-06-02", "kept")),
])
def test_retention_schedule(case, policy, m, d, want):
    row = schedule.schedule(m, d, policy, today=TODAY)
    assert (row["rule"], row.get("until"), row["status"]) == want, case


# -- review ---------------------------------------------------------------------------------------

NESTED = {"review": {"default_days": 365, "classes": {"enterprise": 180, "enterprise/network-services": 90}}}


@pytest.mark.parametrize(("policy", "klass", "days"), [  # checked regularly, by class
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
    ("[R-3.5.1] never reviewed, the day before it falls due", [], "2026-06-29", ("2026-06-30", False, False)),
    ("[R-3.5.1] never reviewed, due today: stale", [], "2026-06-30", ("2026-06-30", True, False)),
    ("[R-3.5.1] verified: the interval restarts", [review("2026-06-15T10:00:00Z", "verified")], "2026-07-01",
     ("2026-12-12", False, False)),
    ("[R-3.5.1] needs an update: listed until a later review verifies it",
     [review("2026-03-01T10:00:00Z", "needs-update")], "2026-04-01", ("2026-08-28", False, True)),
    ("[R-3.5.1] the newest review counts",
     [review("2026-03-01T10:00:00Z", "needs-update"), review("2026-04-01T10:00:00Z", "verified")], "2026-04-02",
     ("2026-09-28", False, False)),
])
def test_review_state(case, history, today, want):
    row = reviews.state(DEFAULT_POLICY, dossier(), history, dt.date.fromisoformat(today))
    assert (row["due_on"], row["stale"], row["needs_update"]) == want, case
    assert row["stale_since"] == (row["due_on"] if row["stale"] else None)


# -- completeness ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "m", "missing"), [
    ("[R-1.3.2] [R-3.1.1] an enterprise with both categories", dossier(doc("basic-info"), doc("contract")), []),
    ("[R-1.3.2] an enterprise without a contract", dossier(doc("basic-info")), ["contract"]),
    ("[R-1.3.2] a superseded contract does not count", dossier(doc("basic-info"), doc("contract", superseded_by="x/0002")),
     ["contract"]),
    ("[R-1.3.2] [R-3.3.2] a destroyed contract does not count", dossier(doc("basic-info"), doc("contract", status="destroyed")),
     ["contract"]),
    ("[R-1.3.2] [R-3.2.1] an individual needs basic information only", dossier(doc("basic-info"), customer_type="individual"), []),
    ("[R-1.3.2] an empty dossier lacks every category", dossier(), ["basic-info", "contract"]),
])
def test_missing_categories(case, m, missing):
    assert completeness.missing_categories(DEFAULT_POLICY, m) == missing, case


@pytest.mark.parametrize(("case", "profile", "missing"), [
    ("[R-1.3.2] [R-3.1.1] all there", {"name": "N", "contact": ["c"], "legal_rep": "L"}, []),
    ("[R-1.3.2] blank strings are missing", {"name": "N", "contact": ["  "], "legal_rep": ""}, ["contact", "legal_rep"]),
    ("[R-1.3.2] an empty list is missing", {"name": "N", "contact": [], "legal_rep": "L"}, ["contact"]),
    ("[R-1.3.2] absent fields are missing", {}, ["name", "contact", "legal_rep"]),
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


# -- one archive through every retention policy, against reviewed files (restic's policy tests) -----

GOLDEN = Path(__file__).parent / "vectors" / "rules"


def _numbered(number: str, m: Manifest, *docs: Document) -> list[tuple[Manifest, Document]]:
    m = replace(m, number=number, documents=tuple(replace(d, number=f"{number}/{i:04d}") for i, d in enumerate(docs, 1)))
    return [(m, d) for d in m.documents]


#: Every case the retention rules tell apart, in one archive: contracts fulfilled or not, on both
#: sides of ``TODAY`` and of a leap day; general information of open and closed dossiers; classes and
#: customer types that pick different rules [R-3.2.1]; a category no rule names.
ARCHIVE: list[tuple[Manifest, Document]] = [
    *_numbered("E-2026-000001", dossier(),
               doc("contract", events={"contract-fulfilled": "2020-05-31"}),
               doc("contract", events={"contract-fulfilled": "2020-06-02"}),
               doc("contract", date="2027-06-01"),
               doc("basic-info"), doc("feedback"), doc("minutes-of-a-meeting")),
    *_numbered("E-2026-000002", dossier(klass="enterprise/software-development/2026", closed="2024-02-29"),
               doc("contract", events={"contract-fulfilled": "2016-02-29"}),
               doc("communication"), doc("service-record", date="2010-01-01")),
    *_numbered("I-2026-000003", dossier(customer_type="individual", klass="individual/network-services/2026",
                                        closed="2025-06-02"),
               doc("contract", date="2023-06-01"), doc("contract", date="2023-06-02"), doc("basic-info")),
]

POLICIES = {
    "default": DEFAULT_POLICY,
    "contract-rules": CONTRACT_RULES,
    "none": {"retention": []},
    "from-the-material": {"retention": [  # everything counted from the material's own date
        {"name": "all", "categories": ["contract", "basic-info", "feedback", "communication", "service-record",
                                       "other"], "event": "document-date", "years": 4}]},
}


@pytest.fixture
def golden(request):
    """Compare an answer with its reviewed file, or (re)write the file under ``--update-golden``."""
    def check(path: Path, got) -> None:
        got = json.loads(json.dumps(got))
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        assert json.loads(path.read_text(encoding="utf-8")) == got, f"{path.name} differs (pytest --update-golden shows how)"
    return check


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_archive_under_each_retention_policy(name, golden):
    """[R-3.3.2] Each document's rule, trigger event, event date, end date and status."""
    rows = [schedule.schedule(m, d, POLICIES[name], today=TODAY) for m, d in ARCHIVE]
    golden(GOLDEN / f"retention-{name}.json", rows)
