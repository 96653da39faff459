"""Every record kind has a JSON Schema (FORMAT §3), found from its path in one table, and reads validate against it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import mutation_sweep
import pytest
from test_typed_records import TYPED

from vault.archive import trust
from vault.store import layout, records

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def test_every_schema_file_has_a_row_and_every_row_a_schema_file():
    shipped = {p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json")}
    # audit-entry is a line of audit/log.jsonl, not a file of its own.
    assert set(layout.SCHEMAS.values()) == shipped - {"audit-entry"}
    for name in layout.SCHEMAS.values():
        assert records._schema(name)["type"] == "object", name


def test_every_toml_file_of_the_layout_and_the_trust_table_has_a_row():
    paths = [p for p in layout.PATHS.values() if p.endswith(".toml")]
    assert all(p in layout.SCHEMAS for p in paths), [p for p in paths if p not in layout.SCHEMAS]
    # Each pattern of a signed record the history binds matches some row's form.
    for pattern in (p for p in trust.RECORDS if p.endswith(".toml")):
        assert any(trust.match(_example(row), pattern) for row in layout.SCHEMAS), pattern


def _example(template: str) -> str:
    """A path of the template's form: each part filled with a valid value."""
    fill = {"n": "1", "seq": "1", "name": "ann", "ring": "archive", "dossier-id": "a" * 32, "id": "b" * 32,
            **{f"{k}-no": f"{k}-000001" for k in "RGDLIE"}}
    out = template
    for part, value in fill.items():
        out = out.replace(f"<{part}>", value)
    return out


@pytest.mark.parametrize("template", sorted(layout.SCHEMAS))
def test_each_row_is_found_from_its_path_and_no_other(template):
    rel = _example(template)
    assert layout.schema_for(rel) == layout.SCHEMAS[template]
    # Exactly one row matches: a record about another (``.decision``) is never read as the other.
    assert sum(bool(pattern.fullmatch(rel)) for pattern, _ in layout._SCHEMA_PATTERNS) == 1


@pytest.mark.parametrize("rel", ["members/../vault.toml", "requests/R-1.toml", "requests/R-000001.note.toml",
                                 "dossiers/xyz/manifest.toml", "holds/lifted/" + "a" * 32 + ".toml", "notes.toml"])
def test_a_path_of_no_record_kind_has_no_schema(rel):
    assert layout.schema_for(rel) is None


def test_every_toml_file_an_office_writes_has_its_kind_and_is_valid(tmp_path, monkeypatch):
    """FORMAT §3 made true: an office with one record of every kind (the mutation sweep's, plus a
    request by customer name that a grant resolved, a used copy request and a cancelled destruction)
    holds no TOML file without a schema, each valid against it, and every schema is used."""
    w = mutation_sweep.build(tmp_path, monkeypatch)
    o, b = w.office, w.numbers[1]
    by_name = o.json("request", "access", "--customer", "Sweep Customer A", "--purpose", "renewal", who="staff")["number"]
    o.run("request", "approve", by_name, who="head")
    o.run("grant", by_name, who="bob")
    copy = o.json("request", "copy", w.docs[0], "--purpose", "for the customer", who="staff")["number"]
    o.run("request", "approve", copy, who="alice")
    o.run("doc", "export", w.docs[0], "--output", str(tmp_path / "copy.bin"), who="staff")
    d = o.json("destroy", "request", b, "--reason", "duplicate", who="alice")["number"]
    o.run("destroy", "cancel", d, "--reason", "kept after all", who="alice")
    kinds = set()
    for p in sorted(o.vault_dir.rglob("*.toml")):
        rel = p.relative_to(o.vault_dir).as_posix()
        schema = layout.schema_for(rel)
        assert schema is not None, f"{rel}: no schema for this record kind"
        table = tomllib.loads(p.read_text(encoding="utf-8"))
        records.validate(table, schema, what=rel)
        kinds.add(schema)
        if schema in TYPED:  # read into its typed record and written back: the same bytes
            assert records.dump_toml(TYPED[schema].from_record(table, what=rel).to_record()) == p.read_bytes(), rel
    assert kinds == set(layout.SCHEMAS.values())
