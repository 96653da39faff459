"""Exports against a hostile destination and hostile names: nothing overwritten, every bag readable as RFC 8493 says."""

from __future__ import annotations

import io
import resource
import re

import bagit
import pytest

from test_export import approve_copy, refused
from vault.crypto import age
from vault.office import export

pytestmark = pytest.mark.office(("staff-sales", "staff", "sales"), dossier={"name": "Acme Ltd"}, doc="a contract")


def _planting(monkeypatch, make):
    """Whatever ``make`` plants at the output appears between the destination's check and the write:
    another export to the same path, or someone who can write the destination directory."""
    check = export.check_destination

    def check_then_plant(v, dest):
        dest = check(v, dest)
        make(dest)
        return dest

    monkeypatch.setattr(export, "check_destination", check_then_plant)


def _file(dest):
    dest.write_text("someone else's file")


def _empty_dir(dest):
    dest.mkdir()


@pytest.mark.parametrize("fmt, plant", [("json", _file), ("bagit", _empty_dir), ("bagit", _file)])
def test_an_output_that_appears_after_the_check_is_never_replaced_and_keeps_the_approval(office, tmp_path, monkeypatch,
                                                                                         fmt, plant):
    """[R-3.4.2] Exports never overwrite: a file or directory put at the output while the export runs
    (a second export to the same path, a hostile destination) is refused in one line, left as it
    was, and the copy approval is still there for the next try."""
    req = approve_copy(office, office.number)
    dest = tmp_path / "out"
    _planting(monkeypatch, plant)
    line = refused(office.run("dossier", "export", office.number, "--format", fmt, "--output", str(dest),
                              who="bob", ok=False))
    assert "already exists" in line
    assert (dest.read_text() == "someone else's file") if plant is _file else list(dest.iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    monkeypatch.undo()
    office.run("dossier", "export", office.number, "--format", fmt, "--output", str(tmp_path / "again"), who="bob")
    assert office.json("request", "show", req, who="bob")["state"] == "used"


def test_doc_export_never_replaces_a_file_that_appears_after_the_check(office, tmp_path, monkeypatch):
    approve_copy(office, office.doc)
    dest = tmp_path / "copy.txt"
    _planting(monkeypatch, _file)
    assert "already exists" in refused(office.run("doc", "export", office.doc, "--output", str(dest), who="bob",
                                                  ok=False))
    assert dest.read_text() == "someone else's file"
    monkeypatch.undo()
    office.run("doc", "export", office.doc, "--output", str(tmp_path / "again.txt"), who="bob")


class _Document:
    """A current document as an exporter sees it, with a number a numbering scheme may give."""

    def __init__(self, number: str, text: bytes) -> None:
        self.number, self.current, self.readable, self._text = number, True, True, text

    def meta(self) -> dict:
        return {"filename": "scan.pdf"}

    def open(self):
        return io.BytesIO(self._text)


def _decoded(line: str) -> str:
    """A manifest line's path as RFC 8493 §2.1.3 reads it: only CR, LF and % are percent-encoded."""
    path = line.split("  ", 1)[1].rstrip("\n")
    return re.sub(r"%(0[AD]|25)", lambda m: {"0A": "\n", "0D": "\r", "25": "%"}[m.group(1).upper()], path,
                  flags=re.IGNORECASE)


def test_a_bag_of_numbers_with_any_character_is_read_alike_by_rfc_8493_and_by_bagit_python(tmp_path):
    """A numbering scheme may put `%`, `.` or `_` in a number. A payload name holding a `%` is read
    as another file by RFC 8493 (which decodes `%25` in a manifest) or by bagit-python (which does
    not): the names hold none, so both find every file and the bag is valid to either."""
    from vault.archive.exportview import ExportDossier
    from plugins.exports import BagItExporter

    number = "A%41.2026_7"
    dossier = ExportDossier({"number": number, "class": "enterprise"}, granted=frozenset({"sealed", "content"}),
                            profile=None, exported_by="bob", exported_at="2026-03-01T10:00:00Z", fmt="bagit",
                            request="R-000001")
    docs = [_Document(f"{number}/0001", b"first"), _Document(f"{number}/0002", b"second")]
    dest = tmp_path / "bag"
    dest.mkdir()
    BagItExporter().export(dossier=dossier, documents=docs, dest=dest)
    for name in ("manifest-sha256.txt", "manifest-sha512.txt"):
        lines = (dest / name).read_text().splitlines(keepends=True)
        assert len(lines) == 2 and all((dest / _decoded(line)).is_file() for line in lines), lines
    bagit.Bag(str(dest)).validate()


@pytest.fixture
def tampered(office, tmp_path):
    """A contract of 600 KiB whose ciphertext has one bit flipped in its middle, far past the header,
    and copy approvals for it and its dossier."""
    big = tmp_path / "big.pdf"
    big.write_bytes(b"confidential terms\n" * 32_000)
    office.big = office.json("doc", "add", office.number, str(big), "--category", "contract", "--date", "2026-02-03",
                             "--title", "terms", "--source", "desk", "--original", who="bob")["number"]
    path = max((office.vault_dir / "dossiers").rglob("documents/*.age"), key=lambda p: p.stat().st_size)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    approve_copy(office, office.number)
    approve_copy(office, office.big)
    office.out = tmp_path / "out"
    office.out.mkdir()
    return office


@pytest.mark.parametrize("args", [["dossier", "export", "{number}", "--format", "bagit"],
                                  ["dossier", "export", "{number}", "--format", "age", "--recipient", "{recipient}"],
                                  ["doc", "export", "{big}"]])
def test_tampered_document_bytes_are_named_and_leave_no_export(tampered, args):
    """Bytes changed in a document's ciphertext — past its header, where a re-wrapped bundle copies
    them without decrypting — end the export in one line naming the document, and nothing is left
    under the output's name or beside it."""
    recipient = age.recipient_of(age.generate_identity("x25519"))
    args = [a.format(number=tampered.number, big=tampered.big, recipient=recipient) for a in args]
    line = refused(tampered.run(*args, "--output", str(tampered.out / "x"), who="bob", ok=False))
    assert tampered.big in line and "damaged or tampered with" in line, line
    assert list(tampered.out.iterdir()) == []


@pytest.mark.parametrize("fmt", ["bagit", "age"])
def test_a_disk_full_mid_export_is_said_as_such_and_leaves_nothing(office, tmp_path, fmt):
    """A destination that fills up while a bag or a bundle is written (here: files limited to
    300 kB, a 600 kB document) ends in the system's one line and the hint about free space — not
    as a plugin's failure — and leaves nothing at the output or beside it."""
    big = tmp_path / "big.pdf"
    big.write_bytes(b"confidential terms\n" * 32_000)
    office.run("doc", "add", office.number, str(big), "--category", "contract", "--date", "2026-02-03",
               "--title", "terms", "--source", "desk", "--original", who="bob")
    approve_copy(office, office.number)
    out = tmp_path / "out"
    out.mkdir()
    extra = ["--recipient", age.recipient_of(age.generate_identity("x25519"))] if fmt == "age" else []
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, hard))  # Python ignores SIGXFSZ: a write fails
    try:
        res = office.run("dossier", "export", office.number, "--format", fmt, "--output", str(out / "x"), *extra,
                         who="bob", ok=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    refused(res)
    assert "plugin" not in res.stderr and "free space" in res.stderr, res.stderr
    assert list(out.iterdir()) == []
