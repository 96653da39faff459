"""The fast schema check says "valid" only where jsonschema does: every schema compiles, and mutated
records and edge values get the same verdict from both."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.store import fastschema, records
from vault.errors import FormatError

REPO = Path(__file__).resolve().parent.parent
FROZEN = REPO / "tests" / "vectors" / "frozen-v1" / "vault"
SCHEMAS = sorted(p.name.removesuffix(".schema.json") for p in (REPO / "schemas").glob("*.schema.json"))

REVIEW = {"format": 1, "dossier": "0" * 32, "number": "E-2026-000001", "seq": 1, "at": "2026-03-01T10:00:00Z",
          "by": "bob", "outcome": "verified", "signature": {"by": "bob", "ed25519": "AAAA"}}


SEARCH = {"format": 1, "recipient": "age1pq1" + "q" * 60, "at": "2026-03-01T10:00:00Z", "by": "bob",
          "signature": {"by": "bob", "ed25519": "AAAA"}}


SIG = {"by": "alice", "ed25519": "AAAA"}
AT = "2026-03-01T10:00:00Z"
OFFICE = {
    "execution": {"format": 1, "destruction": "D-000001", "target": "E-2026-000001", "dossier": "0" * 32,
                  "dossier_number": "E-2026-000001", "whole_dossier": True, "started_at": AT, "started_by": "alice",
                  "documents": [{"number": "E-2026-000001/0001", "id": "1" * 32, "key": "2" * 32, "meta_key": "3" * 32,
                                 "sha256": "4" * 64, "size": 10}],
                  "grant_keys": ["0" * 32 + ".G-000001.age"], "retention": [{"number": "E-2026-000001/0001"}],
                  "retention_overridden": False, "steps": ["unindex", "keys"], "manifest_revision": 3,
                  "executed_at": AT, "offsite": {}, "signature": SIG},
    "destructionclose": {"format": 1, "destruction": "D-000001", "request_sha256": "5" * 64, "outcome": "denied",
                         "by": "alice", "at": AT, "reason": "AAAA", "signature": SIG},
    "holdlift": {"format": 1, "dossier": "0" * 32, "number": "E-2026-000001", "seq": 1, "hold_at": AT,
                 "hold_by": "bob", "hold_sha256": "6" * 64, "at": AT, "by": "alice", "reason": "AAAA", "signature": SIG},
    "paperloan": {"format": 1, "number": "L-000001", "document": "E-2026-000001/0001", "dossier": "0" * 32,
                  "borrower": "staff", "request": "R-000001", "from_location": "Room 1", "at": AT, "by": "bob",
                  "due": "2026-03-09", "signature": SIG},
    "paperreturn": {"format": 1, "loan": "L-000001", "document": "E-2026-000001/0001", "at": AT, "by": "bob",
                    "location": "Room 1", "signature": SIG},
    "recovery": {"format": 1, "number": "E-000001", "recipients": ["age1" + "q" * 58], "requested_by": "alice",
                 "requested_at": AT, "expires_at": AT, "signature": SIG},
    "recoveryapproval": {"format": 1, "export": "E-000001", "request_sha256": "7" * 64, "by": "carol", "at": AT,
                         "expires_at": AT, "signature": SIG},
    "recoverydone": {"format": 1, "export": "E-000001", "request_sha256": "7" * 64, "approval_sha256": "8" * 64,
                     "by": "carol", "at": AT, "manifest_sha256": "9" * 64, "dossiers": 2, "documents": 1,
                     "signature": SIG},
    "inventory": {"format": 1, "number": "I-000001", "at": AT, "by": "bob",
                  "found": [{"document": "E-2026-000001/0001", "location": "Room 1"}],
                  "misplaced": [{"document": "E-2026-000001/0001", "location": "Room 1", "recorded": "Room 2"}],
                  "missing": ["E-2026-000001/0002"], "out": [], "unknown": [], "signature": SIG},
}


def samples() -> dict[str, list[dict]]:
    """Real records of every schema: the frozen version-1 vault, and records it does not have."""
    out: dict[str, list[dict]] = {"review": [REVIEW], "search": [SEARCH], **{k: [v] for k, v in OFFICE.items()}}
    globs = {"vault": ["vault.toml"], "policy": ["policy.toml"], "member": ["members/*.toml"],
             "ring": ["rings/*.toml"], "manifest": ["dossiers/*/manifest.toml"]}
    for schema, patterns in globs.items():
        out[schema] = [tomllib.loads(p.read_text()) for pat in patterns for p in sorted(FROZEN.glob(pat))]
    # The genesis record of format 2 is the frozen one as 'vault migrate' rewrites it.
    out["vault"] = [dict(cfg, format=2, genesis_records={"policy.toml": "0" * 64}, migrated_from="0" * 32,
                         migrated_by={"name": cfg["founder"]["name"], "key": cfg["founder"]["key"]})
                    for cfg in out["vault"]]
    return out


SAMPLES = samples()
_SIG = {"by": "bob", "ed25519": "AAAA"}
_AT = "2026-03-01T10:00:00Z"
_B64 = "YWdl"
# The procedure records: those of the frozen vault, and a hand-made one of each other kind.
SAMPLES.update({
    "request": [tomllib.loads((FROZEN / "requests" / "R-000001.toml").read_text())],
    "decision": [tomllib.loads((FROZEN / "requests" / "R-000001.decision.toml").read_text())],
    "grant": [tomllib.loads((FROZEN / "grants" / "G-000001.toml").read_text())],
    "checkpoint": [tomllib.loads((FROZEN / "audit" / "checkpoint.toml").read_text())],
    "audit-entry": [json.loads(line) for line in (FROZEN / "audit" / "log.jsonl").read_text().splitlines()],
    "used": [{"format": 1, "request": "R-000002", "at": _AT, "signature": _SIG}],
    "resolution": [{"format": 1, "request": "R-000002", "request_sha256": "0" * 64, "dossier": "0" * 32,
                    "number": "E-2026-000001", "by": "bob", "at": _AT, "signature": _SIG}],
    "closed": [{"format": 1, "grant": "G-000001", "reason": "revoked", "by": "bob", "at": _AT, "signature": _SIG}],
    "hold": [{"format": 1, "dossier": "0" * 32, "number": "E-2026-000001", "at": _AT, "by": "alice",
              "reason": _B64, "signature": _SIG}],
    "destruction": [{"format": 1, "number": "D-000001", "target": "E-2026-000001/0001", "dossier": "0" * 32,
                     "requested_by": "alice", "requested_at": _AT, "reason": _B64, "signature": _SIG}],
    "approval": [{"format": 1, "destruction": "D-000001", "request_sha256": "0" * 64, "by": "sam", "at": _AT,
                  "signature": _SIG}],
    "certificate": [{"format": 1, "destruction": "D-000001", "target": "E-2026-000001", "requested_by": "alice",
                     "approved_by": "sam", "destroyed": [{"number": "E-2026-000001/0001"}], "signature": _SIG}],
    "intake": [{"format": 1, "id": "0" * 32, "for": "E-2026-000001", "category": "other", "date": "2026-01-01",
                "original": False, "submitted_at": _AT, "size": 10, "sha256": "0" * 64, "sealed": _B64}],
    "rejected": [{"format": 1, "id": "0" * 32, "for": "E-2026-000001", "by": "bob", "at": _AT, "reason": _B64,
                  "signature": _SIG}],
    "backups": [{"format": 1, "targets": [{"url": "file:///backup", "first_backup": _AT}]}],
    "invitation": [{"format": 1, "id": "0" * 32, "dossier": "1" * 32, "number": "E-2026-000001", "dept": "sales",
                    "by": "bob", "issued_at": _AT, "expires_at": _AT, "uses": 1, "token_sha256": "0" * 64,
                    "recipient": "age1pq1" + "q" * 40, "note": _B64, "signature": _SIG}],
})
ODD_VALUES = [None, True, False, 0, 1, -1, 1.0, 1.5, 2**70, "", "x", "E-2026-000001", "0" * 32, [], [1, True],
              ["a", "a"], {}, {"by": "x"}, "2026-03-01T10:00:00Z", "vault-member-1:x:y"]


# An added key or list item only has to be of a kind the schema may or may not allow.
FEW_VALUES = [None, "x", 1, {}]


def reference(schema: str):
    return jsonschema.Draft202012Validator(records._schema(schema))


def test_every_schema_is_in_the_fast_subset():
    assert set(SCHEMAS) == set(SAMPLES)
    for name in SCHEMAS:
        assert fastschema.compile(records._schema(name)) is not None, name


@pytest.mark.parametrize("schema", SCHEMAS)
def test_real_records_are_valid_for_both(schema):
    check, ref = fastschema.compile(records._schema(schema)), reference(schema)
    assert SAMPLES[schema]
    for rec in SAMPLES[schema]:
        assert ref.is_valid(rec) and check(rec)


def paths(obj, prefix=()):
    """Every path to a value inside a record."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, (*prefix, i))


def _shallow(x):
    return dict(x) if isinstance(x, dict) else list(x)


def mutate(rec, path, how, value):
    """A changed copy of ``rec``: only the containers along ``path`` are copied (a deep copy of the
    policy for each of thousands of mutations was most of this file's time)."""
    if not path:
        return value if how == "set" else rec
    rec = _shallow(rec)
    parent = rec
    for p in path[:-1]:
        parent[p] = _shallow(parent[p])
        parent = parent[p]
    last = path[-1]
    if how == "set":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif how == "extra" and isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    elif how == "append" and isinstance(parent, list):
        parent.append(value)
    return rec


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_single_mutation_gets_the_same_verdict(schema):
    check, ref = fastschema.compile(records._schema(schema)), reference(schema)
    values = {"set": ODD_VALUES, "delete": [None], "extra": FEW_VALUES, "append": FEW_VALUES}
    for rec in SAMPLES[schema][:1]:
        for path in list(paths(rec)):
            for how, some in values.items():
                for value in some:
                    try:
                        m = mutate(rec, path, how, value)
                    except (KeyError, IndexError, TypeError):
                        continue
                    assert check(m) == ref.is_valid(m), (schema, path, how, value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**66) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=st.sampled_from(SCHEMAS), data=st.data())
def test_random_mutations_agree(schema, data):
    check, ref = fastschema.compile(records._schema(schema)), reference(schema)
    rec = data.draw(st.sampled_from(SAMPLES[schema]))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(paths(rec))))
        how = data.draw(st.sampled_from(["set", "delete", "extra", "append"]))
        try:
            rec = mutate(rec, path, how, data.draw(json_values))
        except (KeyError, IndexError, TypeError):
            pass
    assert check(rec) == ref.is_valid(rec)


@pytest.mark.parametrize("a,b,same", [(1, True, False), (0, False, False), (1, 1.0, True), ([1], [True], False),
                                      ({"a": 1}, {"a": 1.0}, True), ("1", 1, False), (None, False, False),
                                      ([1, [2]], [1, [2]], True)])
def test_equality_is_json_equality(a, b, same):
    assert fastschema.equal(a, b) is same
    assert jsonschema.Draft202012Validator({"const": a}).is_valid(b) is same


def test_a_schema_outside_the_subset_falls_back_to_jsonschema():
    assert fastschema.compile({"type": "object", "patternProperties": {"^x": {"type": "string"}}}) is None
    assert fastschema.compile({"$ref": "#/$defs/a", "$defs": {"a": {}}}) is None
    assert fastschema.compile({"items": {"type": "string"}, "prefixItems": [{}]}) is None


def test_validate_still_words_errors_with_jsonschema():
    bad = mutate(SAMPLES["member"][0], ("status",), "set", "gone")
    with pytest.raises(FormatError, match=r"^members/x.toml: status: 'gone' is not one of"):
        records.validate(bad, "member", what="members/x.toml")
    records.validate(SAMPLES["member"][0], "member", what="members/x.toml")


def test_schemas_are_json():
    for name in SCHEMAS:
        assert json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())


@pytest.mark.parametrize("schema", SCHEMAS)
def test_an_anchored_pattern_takes_no_trailing_newline(schema):
    """A schema's pattern is ECMA-262's, where ``$`` ends the text; Python's ``$`` also matches before a
    final newline, so ``G-000001\\n`` passed ``^G-[0-9]{6,12}$`` — a record naming its number with a
    newline was valid. Every anchored pattern of every schema, through the fast check and through
    ``records.validate`` (jsonschema's wording included), now refuses the text with a newline added."""
    data = json.loads((REPO / "schemas" / f"{schema}.schema.json").read_text(encoding="utf-8"))
    found = []

    def walk(node):
        if isinstance(node, dict):
            p = node.get("pattern")
            if isinstance(p, str) and p.startswith("^") and p.endswith("$"):
                found.append(p)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    for p in found:
        ok = _a_match(p)
        if ok is None:
            continue
        one = {"type": "string", "pattern": p}
        assert fastschema.compile(one)(ok) and records.json_validator(one).is_valid(ok), (p, ok)
        assert not fastschema.compile(one)(ok + "\n"), (p, ok)
        assert not records.json_validator(one).is_valid(ok + "\n"), (p, ok)


def test_a_record_with_a_newline_after_its_number_is_refused():
    """The same through ``records.validate``: a grant whose number ends in a newline is named."""
    rec = {"format": 1, "number": "G-000001\n", "request": "R-000001", "dossier": "0" * 32, "target": "E-2026-000001",
           "grantee": "bob", "granted_at": "2026-01-02T03:04:05Z", "expires_at": "2026-01-03T03:04:05Z",
           "approval_sha256": "0" * 64, "signature": {"by": "bob", "alg": "ed25519", "sig": "AAAA"}}
    with pytest.raises(FormatError, match="number"):
        records.validate(rec, "grant", what="grants/G-000001.toml")


def _a_match(pattern: str) -> str | None:
    """A short text the pattern matches, found among a few candidates (None: none of them)."""
    import re

    for text in ("G-000001", "R-000001", "0" * 32, "0" * 64, "a", "abc", "bob", "E-2026-000001", "E-2026-000001/0001",
                 "2026-01-02", "2026-01-02T03:04:05Z", "sales", "enterprise", "1", "x", "A", "vault-member-1:x",
                 "L-000001", "D-000001", "E-000001", "I-2026-000001"):
        if re.search(pattern, text) and not text.endswith("\n"):
            return text
    return None


@pytest.mark.parametrize("pattern, text, matches", [
    (r"^a\$$", "a$", True), (r"^a\$$", "a$\n", False),          # an escaped $ is a dollar sign
    (r"^[$x]+$", "$x$", True), (r"^[$x]+$", "x\n", False),      # a $ in a class is a member
    (r"^[]$]+$", "]$", True), (r"^[^]$]+$", "ab", True),          # "]" first in a class (after "^")
    (r"^[^]$]+$", "a\n", True), (r"^(a$|b)$", "a\n", False),    # … and "\n" is no "]" or "$"; $ in a group
])
def test_python_pattern_reads_only_an_anchor_as_the_end(pattern, text, matches):
    """``$`` becomes the end of the text only where it is an anchor: escaped, or in a character class
    (``]`` first included), it stays the character it is."""
    import re

    assert bool(re.search(fastschema.python_pattern(pattern), text)) is matches
