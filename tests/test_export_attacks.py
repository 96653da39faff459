"""Exports against a hostile destination and hostile names: nothing overwritten, every bag readable as RFC 8493 says."""

from __future__ import annotations

import pytest

from test_export import approve_copy, refused
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
