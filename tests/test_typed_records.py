"""Typed records: each record kind read into its frozen dataclass validates, names the kind and field it refuses, and writes back the same bytes."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from vault.archive.accessrecords import Decision, Grant, GrantClosed, Request, Resolution, Used
from vault.archive.destructionrecords import Destruction, DestructionApproval, DestructionClosed
from vault.archive.holdrecords import Hold, HoldLift
from vault.archive.intakerecords import Rejection, Submission
from vault.archive.paperrecords import Inventory, PaperLoan, PaperReturn
from vault.archive.recoveryrecords import RecoveryApproval, RecoveryDone, RecoveryRequest
from vault.archive.manifestrecord import Destroyed, Document, Manifest, ProfileVersion, Reopening
from vault.archive.states import DossierStatus
from vault.errors import FormatError
from vault.store import records
from vault.store.typed import Signature

FROZEN = Path(__file__).resolve().parent / "vectors" / "frozen-v1" / "vault"

#: Every typed record kind by its schema name (tests/test_record_schemas.py round-trips a whole office's).
TYPED = {cls.KIND: cls for cls in (Manifest, Request, Decision, Resolution, Used, Grant, GrantClosed, Hold, HoldLift,
                                   Destruction, DestructionApproval, DestructionClosed, PaperLoan, PaperReturn, Inventory,
                                   RecoveryRequest, RecoveryApproval, RecoveryDone, Submission, Rejection)}


def _table(rel: str) -> tuple[bytes, dict]:
    raw = (FROZEN / rel).read_bytes()
    return raw, tomllib.loads(raw.decode())


@pytest.mark.parametrize(("cls", "rel"), [(Request, "requests/R-000001.toml"), (Decision, "requests/R-000001.decision.toml"),
                                          (Grant, "grants/G-000001.toml"),
                                          (Manifest, "dossiers/fd6049dd16f16fad73a8e2498ac85a52/manifest.toml"),
                                          (Manifest, "dossiers/6f71a9bc3495dccc34a39faca0598ae7/manifest.toml")])
def test_a_record_of_the_frozen_vault_reads_and_writes_back_its_bytes(cls, rel):
    raw, table = _table(rel)
    rec = cls.from_record(table, what=rel)
    assert records.dump_toml(rec.to_record()) == raw
    assert records.canonical(rec.to_record()) == records.canonical(table)  # what its signature covers
    assert isinstance(rec.signature, Signature) and rec.signature.by == table["signature"]["by"]


def test_fields_read_as_attributes_and_an_absent_optional_key_is_none():
    _, table = _table("requests/R-000001.toml")
    req = Request.from_record(table)
    assert (req.number, req.kind, req.requester, req.dept) == ("R-000001", "access", "carol", "sales")
    assert req.customer is None and req.approver_role is None and not req.by_name
    assert "customer" not in req.to_record()


def test_the_key_order_of_the_file_is_kept_whatever_the_field_order():
    _, table = _table("grants/G-000001.toml")
    shuffled = dict(reversed(list(table.items())))
    assert list(Grant.from_record(shuffled).to_record()) == list(shuffled)


def test_a_record_is_frozen():
    _, table = _table("grants/G-000001.toml")
    g = Grant.from_record(table)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.grantee = "mallory"  # type: ignore[misc]
    later = dataclasses.replace(g, expires_at="2026-02-04T09:42:00Z")
    assert later.to_record()["expires_at"] == "2026-02-04T09:42:00Z" and list(later.to_record()) == list(table)


@pytest.mark.parametrize(("change", "field"), [
    (lambda t: t.update(grantee="Mallory Evil"), "grantee"),      # not a member name
    (lambda t: t.pop("expires_at"), "expires_at"),                 # a required key missing
    (lambda t: t.update(expires_at=12), "expires_at"),             # the wrong type
    (lambda t: t.update(extra="x"), "extra"),                      # a key the kind does not have
    (lambda t: t["signature"].pop("ed25519"), "ed25519"),          # a sub-table short of a key
])
def test_a_record_the_schema_refuses_names_its_kind_and_field(change, field):
    _, table = _table("grants/G-000001.toml")
    change(table)
    with pytest.raises(FormatError) as e:
        Grant.from_record(table)
    assert str(e.value.message).startswith("grant: ") and field in str(e.value)


def test_the_path_names_the_record_when_given():
    _, table = _table("requests/R-000001.toml")
    table["kind"] = "steal"
    with pytest.raises(FormatError, match=r"^requests/R-000001.toml: kind: "):
        Request.from_record(table, what="requests/R-000001.toml")


@pytest.mark.parametrize("kind", sorted(TYPED))
def test_each_typed_kind_has_a_field_for_every_key_of_its_schema(kind):
    import json

    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / f"{kind}.schema.json").read_text())
    keys = {f.metadata.get("key", f.name) for f in dataclasses.fields(TYPED[kind]) if f.name != "keys_"}
    assert keys == set(schema["properties"])
    required = {f.metadata.get("key", f.name) for f in dataclasses.fields(TYPED[kind])
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert required == set(schema["required"])


def test_a_manifest_reads_its_documents_and_profile_as_typed_parts():
    raw, table = _table("dossiers/fd6049dd16f16fad73a8e2498ac85a52/manifest.toml")
    m = Manifest.from_record(table)
    assert m.status is DossierStatus.OPEN and m.class_ == table["class"]
    assert all(isinstance(d, Document) for d in m.documents) and isinstance(m.profile[0], ProfileVersion)
    first = m.documents[0]
    assert m.document(first.number) is first and m.document("nope") is None
    assert first.superseded_by and not first.is_current and not first.is_destroyed
    assert m.to_record()["class"] == table["class"] and records.dump_toml(m.to_record()) == raw


def test_a_destroyed_document_and_a_reopening_round_trip():
    _, table = _table("dossiers/fd6049dd16f16fad73a8e2498ac85a52/manifest.toml")
    doc = table["documents"][0]
    for k in ("key", "meta_key", "meta"):
        doc.pop(k)
    doc.update(status="destroyed", destroyed={"at": "2026-03-01T10:00:00Z", "certificate": "D-000001"})
    table["closed"] = "2026-02-20"
    table["reopened"] = [{"at": "2026-02-21T08:00:00Z", "by": "bob", "closed": "2026-02-19"}]
    m = Manifest.from_record(table)
    d = m.documents[0]
    assert d.is_destroyed and d.key is None and d.destroyed == Destroyed("2026-03-01T10:00:00Z", "D-000001", ("at", "certificate"))
    assert m.reopened == (Reopening("2026-02-21T08:00:00Z", "bob", "2026-02-19", ("at", "by", "closed")),)
    assert records.dump_toml(m.to_record()) == records.dump_toml(table)


@pytest.mark.parametrize(("cls", "where"), [(Document, ("documents", "items")), (ProfileVersion, ("profile", "items")),
                                            (Reopening, ("reopened", "items")),
                                            (Destroyed, ("documents", "items", "properties", "destroyed"))])
def test_each_part_of_a_manifest_has_a_field_for_every_key_of_its_schema(cls, where):
    import json

    sub = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json").read_text())
    sub = sub["properties"]
    for step in where:
        sub = sub[step]
    assert {f.name for f in dataclasses.fields(cls) if f.name != "keys_"} == set(sub["properties"])
