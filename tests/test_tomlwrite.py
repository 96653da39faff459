"""The vault's TOML writer writes every record byte for byte as ``tomli_w`` does.

Records are hashed and named in the history as written; a writer that wrote the same data in other
bytes would be harmless to readers but would make the same change look different between versions.
So the faster writer (``vault.store.tomlwrite``) must equal ``tomli_w.dumps`` — on generated data of
every shape a record can take (nested tables, arrays of tables short and long, strings with every
character that needs escaping, keys that need quotes) and on every record of a real vault.
"""

from __future__ import annotations

import math
from pathlib import Path

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from office import make_office
from vault.store import tomlread, tomlwrite

KEYS = st.text(min_size=0, max_size=12) | st.sampled_from(["format", "id", "number", "a-b_c", "sig", "by"])
SCALARS = (st.text(max_size=60) | st.text(alphabet="\x00\x01\x08\t\n\x0c\r\"\\\x1f\x7f\u2028é杭", max_size=20)
           | st.booleans() | st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
           | st.floats(allow_nan=False) | st.dates())


def tables(depth: int = 2):
    value = SCALARS | st.lists(SCALARS, max_size=4)
    if depth:
        inner = tables(depth - 1)
        value = value | inner | st.lists(inner, min_size=1, max_size=3)
    return st.dictionaries(KEYS, value, max_size=6)


@settings(max_examples=1500, deadline=None)
@given(tables())
def test_generated_data_is_written_as_tomli_w_writes_it(data) -> None:
    assert tomlwrite.dumps(data) == tomli_w.dumps(data)


def test_special_floats_and_empty_containers() -> None:
    data = {"inf": math.inf, "ninf": -math.inf, "nan": math.nan, "e": [], "t": {}, "aot": [{}], "": 1}
    assert tomlwrite.dumps(data) == tomli_w.dumps(data)


def test_every_record_of_a_real_vault(tmp_path: Path, monkeypatch) -> None:
    o = make_office(tmp_path, monkeypatch)
    number = o.create(name="杭州标记科技有限公司", contact="+86 571 8800 1234")
    doc = tmp_path / "contract.txt"
    doc.write_text("terms")
    for _ in range(3):  # a manifest whose documents no longer fit inline
        o.add_doc(number, doc)
    seen = 0
    for p in sorted(o.vault_dir.rglob("*.toml")):
        data = tomlread.loads(p.read_text())
        assert tomlwrite.dumps(data) == tomli_w.dumps(data), p
        seen += 1
    assert seen >= 6
