"""Exports end to end through the CLI: every format, copy approvals, the age bundle opened by age, bagit validated."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import bagit
import pytest

from office import MARKERS
from vault.archive import grants
from vault.crypto import age

SEALED_MARKERS = {k: v for k, v in MARKERS.items() if k != "content"}


pytestmark = pytest.mark.office(("staff-sales", "staff", "sales"), dossier={
    "name": MARKERS["name"], "address": MARKERS["address"], "contact": MARKERS["contact"],
    "legal_rep": MARKERS["legal_rep"]})


@pytest.fixture
def office(office, tmp_path):
    """Three documents of 200 KiB and more, a second version of the first, and an output directory."""
    o = office
    o.files, o.docs = {}, []
    for i, (category, suffix) in enumerate((("contract", ".pdf"), ("communication", ".txt"), ("other", ""))):
        f = tmp_path / "in" / f"doc{i}{suffix}"
        f.parent.mkdir(exist_ok=True)
        # 200 KiB and more: several 64 KiB payload chunks, so the byte comparison means something.
        f.write_bytes(f"{MARKERS['content']} {i}\n".encode() * (20_000 * (i + 1)))
        no = o.json("doc", "add", o.number, str(f), "--category", category, "--source", MARKERS["source"],
                    "--date", "2026-02-03", "--original", "--title", MARKERS["title"], who="bob")["number"]
        o.files[no], o.docs = f, o.docs + [no]
    new = tmp_path / "in" / "contract-v2.pdf"
    new.write_bytes(b"amended " + MARKERS["content"].encode())
    o.v2 = o.json("doc", "add", o.number, str(new), "--category", "contract", "--source", "desk", "--date",
                  "2026-04-01", "--original", "--replaces", o.docs[0], who="bob")["number"]
    o.files[o.v2] = new
    o.out = tmp_path / "out"
    o.out.mkdir()
    return o


def approve_copy(office, target: str, who: str = "bob") -> str:
    req = office.json("request", "copy", target, "--purpose", "customer asked for a copy", who=who)["number"]
    office.run("request", "approve", req, who="alice")
    return req


def refused(res) -> str:
    """A refusal: exit 1, one error line and a hint, no traceback."""
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("vault: error: ") and all(ln.startswith("vault: ") for ln in lines), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


def scan(path: Path, markers: dict[str, str]) -> list[str]:
    """The marker names found anywhere in a file or the files under a directory."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    blob = b"".join(p.read_bytes() for p in files)
    return sorted(k for k, v in markers.items() if v.encode() in blob)


def exports_in_audit(office, who: str) -> list[dict]:
    return [e for e in office.json("audit", "log", "--member", who, who="alice") if e["action"].endswith(".export")]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_catalogue_for_a_non_reader_carries_no_sealed_field(office, fmt):
    out = office.out / f"cat.{fmt}"
    office.run("dossier", "export", office.number, "--format", fmt, "--output", str(out), who="staff-sales")
    assert scan(out, MARKERS) == []
    if fmt == "json":
        data = json.loads(out.read_text())
        rows = data["documents"]
        assert data["sealed"] is False and "customer" not in data["dossier"]
    else:
        assert out.read_bytes().startswith("\ufeff".encode())  # Excel on a Chinese desktop needs the BOM
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
        assert "title" not in rows[0] and "customer" not in rows[0]
    assert [r["number"] for r in rows] == [*office.docs, office.v2]
    assert {r["dossier"] for r in rows} == {office.number} and rows[0]["class"] == "enterprise/network-services/2026"
    assert [str(r["superseded_by"] or "") for r in rows][0] == office.v2
    # Every row says whether it is current: neither superseded nor destroyed.
    want = [False, True, True, True] if fmt == "json" else ["false", "true", "true", "true"]
    assert [r["current"] for r in rows] == want
    assert exports_in_audit(office, "staff-sales")[-1]["number"] == office.number  # recorded, no approval used


def test_catalogue_is_deterministic(office):
    a, b = office.out / "a.json", office.out / "b.json"
    for out in (a, b):
        office.run("dossier", "export", office.number, "--format", "json", "--output", str(out), who="staff-sales")
    assert a.read_bytes() == b.read_bytes()


def test_reader_catalogue_with_sealed_fields_needs_a_copy_approval_once(office):
    out = office.out / "cat.json"
    line = refused(office.run("dossier", "export", office.number, "--format", "json", "--output", str(out),
                              who="bob", ok=False))
    assert "no approved copy request" in line and not out.exists()
    # Without sealed fields, a reader needs no approval either.
    office.run("dossier", "export", office.number, "--format", "csv", "--no-sealed", "--output",
               str(office.out / "plain.csv"), who="bob")
    assert scan(office.out / "plain.csv", MARKERS) == []

    req = approve_copy(office, office.number)
    done = office.json("dossier", "export", office.number, "--format", "json", "--output", str(out), who="bob")
    assert done["request"] == req and done["sealed"] is True
    data = json.loads(out.read_text())
    assert data["dossier"]["customer"] == MARKERS["name"] and "address" not in data["dossier"]
    assert all(r["title"] == MARKERS["title"] and r["customer"] == MARKERS["name"] for r in data["documents"][:3])
    assert MARKERS["content"] not in out.read_text()  # a catalogue never carries document content
    again = refused(office.run("dossier", "export", office.number, "--format", "csv", "--output",
                               str(office.out / "again.csv"), who="bob", ok=False))
    assert "no approved copy request" in again
    assert [e.get("ref") for e in exports_in_audit(office, "bob") if e["outcome"] == "ok"][-1] == req


def test_bagit_bag_validates_and_holds_the_current_documents(office):
    approve_copy(office, office.number)
    bag_dir = office.out / "bag"
    office.run("dossier", "export", office.number, "--format", "bagit", "--output", str(bag_dir), who="bob")
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    current = [office.v2, *office.docs[1:]]
    payload = sorted(bag.payload_files())
    assert len(payload) == len(current)
    for no in current:
        name = no.replace("/", "_") + office.files[no].suffix
        assert (bag_dir / "data" / name).read_bytes() == office.files[no].read_bytes()
    assert bag.info["External-Identifier"] == office.number and bag.info["Payload-Oxum"].endswith(f".{len(current)}")
    tags = [p for p in bag_dir.iterdir() if p.is_file()]
    assert not any(scan(p, MARKERS) for p in tags)  # the bag's only customer data is the documents


def _payload(age_file: bytes) -> bytes:
    src = io.BytesIO(age_file)
    age.read_header(src)
    return src.read()


def test_age_bundle_opens_with_age_and_keeps_the_payload_bytes(office, tmp_path):
    key = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = age.recipient_of(next(ln for ln in key.read_text().splitlines() if ln.startswith("AGE-SECRET-KEY-1")))
    other = age.recipient_of(age.generate_identity("x25519"))
    approve_copy(office, office.number)
    bundle = office.out / "bundle"
    office.run("dossier", "export", office.number, "--format", "age", "--output", str(bundle),
               "--recipient", recipient, "--recipient", other, who="bob")

    catalogue = json.loads(subprocess.run(["age", "-d", "-i", str(key), str(bundle / "catalogue.json.age")],
                                          check=True, capture_output=True).stdout)
    files = {r["number"]: r["file"] for r in catalogue["documents"] if r["file"]}
    assert sorted(files) == sorted([office.v2, *office.docs[1:]]) and catalogue["dossier"]["customer"] == MARKERS["name"]
    vault_files = {p.name: p.read_bytes() for p in (office.vault_dir / "dossiers").rglob("documents/*.age")}
    for no, name in files.items():
        opened = subprocess.run(["age", "-d", "-i", str(key), str(bundle / name)], check=True, capture_output=True)
        assert opened.stdout == office.files[no].read_bytes()
        exported = (bundle / name).read_bytes()
        # Re-wrapped, not re-encrypted: the payload is byte for byte one of the vault's documents.
        assert [n for n, blob in vault_files.items() if _payload(blob) == _payload(exported)], no
    assert scan(bundle, MARKERS) == []  # nothing in the bundle is in the clear


def test_age_bundle_needs_valid_recipients_and_keeps_the_approval_until_then(office):
    approve_copy(office, office.number)
    bundle = office.out / "bundle"
    line = refused(office.run("dossier", "export", office.number, "--format", "age", "--output", str(bundle),
                              who="bob", ok=False))
    assert "needs at least one --recipient" in line
    refused(office.run("dossier", "export", office.number, "--format", "age", "--output", str(bundle),
                       "--recipient", "age1notarecipient", who="bob", ok=False))
    pq = age.recipient_of(age.generate_identity("mlkem768x25519"))
    classic = age.recipient_of(age.generate_identity("x25519"))
    mixed = office.run("dossier", "export", office.number, "--format", "age", "--output", str(bundle),
                       "--recipient", pq, "--recipient", classic, who="bob", ok=False)
    assert "cannot be mixed" in mixed.stderr and not bundle.exists()
    office.run("dossier", "export", office.number, "--format", "age", "--output", str(bundle), "--recipient", pq,
               who="bob")
    assert len(list(bundle.glob("*.age"))) == 4


def test_content_formats_are_refused_to_a_member_who_cannot_read(office):
    approve_copy(office, office.number, who="staff-sales")
    out = office.out / "bag"
    line = refused(office.run("dossier", "export", office.number, "--format", "bagit", "--output", str(out),
                              who="staff-sales", ok=False))
    assert "writes document content" in line and not out.exists()
    assert exports_in_audit(office, "staff-sales")[-1]["outcome"] == "refused"


def test_doc_export_needs_a_copy_approval_and_uses_it_once(office):
    docno, out = office.docs[1], office.out / "doc.txt"
    line = refused(office.run("doc", "export", docno, "--output", str(out), who="bob", ok=False))
    assert "no approved copy request" in line and not out.exists()
    approve_copy(office, docno)
    office.run("doc", "export", docno, "--output", str(out), who="bob")
    assert out.read_bytes() == office.files[docno].read_bytes() and out.stat().st_mode & 0o077 == 0
    second = office.out / "again.txt"
    assert "no approved copy request" in refused(office.run("doc", "export", docno, "--output", str(second),
                                                            who="bob", ok=False))
    assert not second.exists()
    outcomes = [(e["action"], e["outcome"]) for e in exports_in_audit(office, "bob")]
    assert ("doc.export", "ok") in outcomes and outcomes.count(("doc.export", "refused")) == 2


def test_exports_never_write_inside_the_vault_or_over_a_file(office):
    approve_copy(office, office.docs[1])
    for dest in (office.vault_dir / "leak.txt", office.vault_dir / "dossiers" / "x.json"):
        line = refused(office.run("doc", "export", office.docs[1], "--output", str(dest), who="bob", ok=False))
        assert "inside the vault" in line and not dest.exists()
    link = office.out / "link"
    link.symlink_to(office.vault_dir / "dossiers")
    assert "inside the vault" in refused(office.run("dossier", "export", office.number, "--format", "json",
                                                    "--output", str(link / "cat.json"), who="staff-sales", ok=False))
    existing = office.out / "exists.json"
    existing.write_text("keep me")
    assert "already exists" in refused(office.run("dossier", "export", office.number, "--format", "json",
                                                  "--output", str(existing), who="staff-sales", ok=False))
    assert existing.read_text() == "keep me"
    office.run("doc", "export", office.docs[1], "--output", str(office.out / "fine.txt"), who="bob")


def test_unknown_format_names_the_formats(office):
    res = office.run("dossier", "export", office.number, "--format", "pdf", "--output", str(office.out / "x"),
                     who="staff-sales", ok=False)
    assert res.exit_code == 1 and "no export format 'pdf'" in res.stderr and "age, bagit, csv, json" in res.stderr


def test_a_grantee_exports_what_the_grant_lets_them_read(office):
    office.add_member("head-sales", "dept-head", dept="sales")
    req = office.json("request", "access", office.number, "--purpose", "customer call", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    office.run("grant", req, who="bob")
    approve_copy(office, office.docs[1], who="staff-sales")
    out = office.out / "granted.txt"
    office.run("doc", "export", office.docs[1], "--output", str(out), who="staff-sales")
    assert out.read_bytes() == office.files[office.docs[1]].read_bytes()
    approve_copy(office, office.number, who="staff-sales")
    cat = office.out / "granted.json"
    office.run("dossier", "export", office.number, "--format", "json", "--output", str(cat), who="staff-sales")
    assert json.loads(cat.read_text())["dossier"]["customer"] == MARKERS["name"]


# A copy approval covers the documents that existed when it was approved, for a bounded time.

LATE = {"content": "LATE-CONTENT-7f3a91", "title": "LATE-TITLE-c0d2e8"}


def add_late_document(o) -> str:
    """A document added to the dossier after the copy approval's decision."""
    f = o.out.parent / "in" / "late.txt"
    f.write_bytes(f"{LATE['content']}\n".encode() * 1000)
    return o.json("doc", "add", o.number, str(f), "--category", "communication", "--source", "desk", "--date",
                  "2026-05-01", "--original", "--title", LATE["title"], who="bob")["number"]


def state_of(o, req: str) -> str:
    return o.json("request", "show", req, who="bob")["state"]


@pytest.mark.parametrize("fmt", ["bagit", "json", "age"])
def test_a_document_added_after_the_copy_approval_is_not_exported_under_it(office, fmt):
    """[R-3.4.2] A copy approval covers the dossier as it was approved: a document added after its
    decision is left out of the export — its content and sealed fields appear nowhere in the output —
    and the export says which documents it left out."""
    o = office
    req = approve_copy(o, o.number)
    late = add_late_document(o)
    out = o.out / f"export-{fmt}"
    extra = ["--recipient", age.recipient_of(age.generate_identity("x25519"))] if fmt == "age" else []
    done = o.json("dossier", "export", o.number, "--format", fmt, "--output", str(out), *extra, who="bob")
    assert done["request"] == req and done["left_out"] == [late]
    assert not scan(out, LATE)
    blob = b"".join(p.read_bytes() for p in ([out] if out.is_file() else out.rglob("*")) if p.is_file())
    assert late.encode() not in blob
    if fmt == "json":
        rows = json.loads(out.read_text())["documents"]
        assert sorted(r["number"] for r in rows) == sorted([*o.docs, o.v2])
        assert all(r["title"] == MARKERS["title"] for r in rows if r["number"] in o.docs)
    if fmt == "bagit":
        names = sorted(p.name for p in (out / "data").iterdir())
        assert len(names) == 3 and not any(late.replace("/", "_") in n for n in names)
    if fmt == "age":
        names = sorted(p.name for p in out.glob("*.age"))
        assert len(names) == 4 and not any(late.replace("/", "_") in n for n in names)
    assert state_of(o, req) == "used"


def test_a_version_added_after_the_copy_approval_leaves_the_approved_version_current(office):
    """[R-3.4.2] A new version added after the approval is left out, and the version the approval
    covered is exported as the current one it was then — the newer one is named nowhere."""
    o = office
    approve_copy(o, o.number)
    f = o.out.parent / "in" / "late-v2.txt"
    f.write_bytes(f"{LATE['content']} amended\n".encode())
    late = o.json("doc", "add", o.number, str(f), "--category", "communication", "--source", "desk", "--date",
                  "2026-05-01", "--original", "--replaces", o.docs[1], who="bob")["number"]
    bag_dir = o.out / "bag"
    done = o.json("dossier", "export", o.number, "--format", "bagit", "--output", str(bag_dir), who="bob")
    assert done["left_out"] == [late]
    assert (bag_dir / "data" / (o.docs[1].replace("/", "_") + o.files[o.docs[1]].suffix)).read_bytes() \
        == o.files[o.docs[1]].read_bytes()
    assert not scan(bag_dir, LATE)
    catalogue = o.out / "c.json"
    approve_copy(o, o.number)  # a second approval, decided after the new version: it covers it
    done = o.json("dossier", "export", o.number, "--format", "json", "--output", str(catalogue), who="bob")
    assert done["left_out"] == [] and late in catalogue.read_text()


def test_a_document_added_under_another_entry_after_the_approval_is_still_left_out(office, monkeypatch):
    """[R-3.4.2] An attacker's view: a member who may add documents commits one with their own copy of
    the library under a 'dossier.update' entry, which names no document added, hoping the approval
    made before it covers it; what follows the last document named up to the decision is left out."""
    from vault.archive import audit

    o = office
    approve_copy(o, o.number)
    real = audit.commit_many

    def disguised(actor, items, **kw):
        items = [dict(i, action="dossier.update", number=o.number, ref=None) if i["action"] == "doc.add" else i
                 for i in items]
        return real(actor, items, **kw)

    monkeypatch.setattr(audit, "commit_many", disguised)
    late = add_late_document(o)
    monkeypatch.setattr(audit, "commit_many", real)
    assert [e["action"] for e in o.json("audit", "log", "--member", "bob", who="alice")][-1] == "dossier.update"
    assert LATE["content"] in o.run("doc", "view", late, who="bob").output  # the history took it
    out = o.out / "bag"
    done = o.json("dossier", "export", o.number, "--format", "bagit", "--output", str(out), who="bob")
    assert done["left_out"] == [late] and not scan(out, LATE)


def test_the_export_text_names_the_documents_left_out(office):
    """[R-3.4.2] The export's own words name each document the approval does not cover."""
    o = office
    approve_copy(o, o.number)
    late = add_late_document(o)
    res = o.run("dossier", "export", o.number, "--format", "bagit", "--output", str(o.out / "bag"), who="bob")
    assert late in res.output and "approved" in res.output


def test_documents_from_before_the_approval_are_all_exported(office):
    """[R-3.4.2] With no document added since the approval, nothing is left out."""
    o = office
    approve_copy(o, o.number)
    done = o.json("dossier", "export", o.number, "--format", "json", "--output", str(o.out / "c.json"), who="bob")
    assert done["left_out"] == [] and done["documents"] == 4


def test_a_copy_approval_past_its_time_is_refused_and_stays_unused(office):
    """[R-3.4.2] An approval is used within COPY_APPROVAL_DAYS of its decision's history entry; after
    that the export is refused in one line with a hint, nothing is written and the approval stays unused."""
    o = office
    req = approve_copy(o, o.number)
    o.later(days=grants.COPY_APPROVAL_DAYS, hours=1)
    out = o.out / "bag"
    line = refused(o.run("dossier", "export", o.number, "--format", "bagit", "--output", str(out), who="bob",
                         ok=False))
    assert req in line and "expired" in line, line
    res = o.run("dossier", "export", o.number, "--format", "bagit", "--output", str(out), who="bob", ok=False)
    assert "new copy request" in res.stderr
    assert not out.exists() and not list(o.out.iterdir())
    assert state_of(o, req) == "approved"
    assert exports_in_audit(o, "bob")[-1]["outcome"] == "refused"


def test_a_document_copy_approval_past_its_time_is_refused_and_stays_unused(office):
    """[R-3.4.2] The same bound holds for a copy request naming one document."""
    o = office
    docno, out = o.docs[1], o.out / "doc.txt"
    req = approve_copy(o, docno)
    o.later(days=grants.COPY_APPROVAL_DAYS + 1)
    line = refused(o.run("doc", "export", docno, "--output", str(out), who="bob", ok=False))
    assert req in line and "expired" in line
    assert not out.exists() and state_of(o, req) == "approved"


def test_a_copy_approval_within_its_time_is_used(office):
    """[R-3.4.2] Within COPY_APPROVAL_DAYS of its decision an approval works as before, once."""
    o = office
    req = approve_copy(o, o.number)
    o.later(days=grants.COPY_APPROVAL_DAYS - 1)
    out = o.out / "bag"
    done = o.json("dossier", "export", o.number, "--format", "bagit", "--output", str(out), who="bob")
    assert done["request"] == req and out.is_dir() and state_of(o, req) == "used"
    docno = o.docs[1]
    req2 = approve_copy(o, docno)
    o.later(days=grants.COPY_APPROVAL_DAYS - 1)
    o.run("doc", "export", docno, "--output", str(o.out / "doc.txt"), who="bob")
    assert (o.out / "doc.txt").read_bytes() == o.files[docno].read_bytes() and state_of(o, req2) == "used"


def test_an_expired_approval_does_not_hide_a_newer_one(office):
    """[R-3.4.2] A new approval asked for after one expired is the one used; the expired one stays unused."""
    o = office
    old = approve_copy(o, o.number)
    o.later(days=grants.COPY_APPROVAL_DAYS + 1)
    new = approve_copy(o, o.number)
    done = o.json("dossier", "export", o.number, "--format", "json", "--output", str(o.out / "c.json"), who="bob")
    assert done["request"] == new and state_of(o, old) == "approved" and state_of(o, new) == "used"
