"""Fuzzing every parser of what others write: only the vault's own errors may come out.

Records (TOML against every schema), audit lines and the whole audit log, the number and sequence
index files, backup trees, packs, indexes and snapshots, key tables, age headers and armor. The
examples per test come from the hypothesis profile: ``vault-quick`` in the suite, ``vault-nightly``
from ``dev/fuzz`` (``VAULT_FUZZ_PROFILE=vault-nightly``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
from importlib import resources

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from office import build_office
from vault.archive import audit
from vault.backup import packs, restorer
from vault.backup.repo import Repo
from vault.crypto import armor, header
from vault.errors import VaultError
from vault.archive.vault import Vault
from vault.store import index, records
from vault.store.keytable import KeyTable

settings.register_profile("vault-quick", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("vault-nightly", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FUZZ = settings(settings.get_profile(os.environ.get("VAULT_FUZZ_PROFILE", "vault-quick")))

SCHEMAS = sorted(p.name.removesuffix(".schema.json") for p in resources.files("vault.schemas").iterdir()
                 if p.name.endswith(".schema.json") and p.name != "audit-entry.schema.json")

keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12) | st.sampled_from(
    ["format", "number", "dossier", "by", "at", "signature", "ed25519", "targets", "url", "count", "head", "id"])
scalars = (st.integers(-2**63, 2**63 - 1) | st.booleans() | st.text(max_size=30) | st.floats(allow_nan=False)
           | st.datetimes() | st.dates() | st.times() | st.just(1))
toml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                           max_leaves=12)
toml_docs = st.dictionaries(keys, toml_values, max_size=8)


def only_vault_errors(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except VaultError:
        return None
    except FileNotFoundError:
        return None  # "no such record" is the caller's to say


@FUZZ
@given(schema=st.sampled_from(SCHEMAS), doc=toml_docs)
def test_records_against_every_schema(tmp_path_factory, schema, doc):
    p = tmp_path_factory.mktemp("rec") / "r.toml"
    p.write_bytes(tomli_w.dumps(doc).encode())
    only_vault_errors(records.load_toml, p, schema=schema, what="r.toml")


@FUZZ
@given(schema=st.sampled_from(SCHEMAS), raw=st.binary(max_size=400))
def test_records_from_raw_bytes(tmp_path_factory, schema, raw):
    p = tmp_path_factory.mktemp("rec") / "r.toml"
    p.write_bytes(raw)
    only_vault_errors(records.load_toml, p, schema=schema, what="r.toml")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                           max_leaves=10)
entry_like = st.fixed_dictionaries({}, optional={
    "seq": st.integers(-2, 5) | json_values, "at": st.just("2026-01-01T00:00:00Z") | json_values,
    "member": st.sampled_from(["alice", "bob"]) | json_values, "action": st.just("doc.view") | json_values,
    "outcome": st.sampled_from(["ok", "refused"]) | json_values, "number": json_values, "ref": json_values,
    "rev": st.integers(0, 3) | json_values, "prev": st.just("0" * 64) | json_values, "sig": json_values})


@FUZZ
@given(raw=st.binary(max_size=300) | entry_like.map(lambda e: json.dumps(e).encode()))
def test_audit_lines(raw):
    only_vault_errors(audit.parse_line, raw, where="line")


@pytest.fixture(scope="module")
def small_vault(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        return build_office(tmp_path_factory.mktemp("fuzz"), mp, dossier={"name": "Fuzz Customer"})


@FUZZ
@given(lines=st.lists(st.binary(max_size=120) | entry_like.map(lambda e: json.dumps(e).encode()), max_size=4),
       keep=st.integers(0, 6))
def test_the_whole_audit_log(small_vault, tmp_path_factory, lines, keep):
    """A log cut anywhere and followed by anything: verify names a problem, it never raises."""
    root = tmp_path_factory.mktemp("v") / "vault"
    shutil.copytree(small_vault.vault_dir, root)
    log = root / "audit" / "log.jsonl"
    kept = log.read_bytes().splitlines(keepends=True)[:keep]
    log.write_bytes(b"".join(kept) + b"\n".join(lines))
    res = audit.verify(Vault.open(root))
    assert isinstance(res.problems, list)


@FUZZ
@given(content=st.binary(max_size=200), number=st.sampled_from(["E-2026-000001", "X", "../x"]))
def test_number_and_sequence_index_files(tmp_path_factory, content, number):
    root = tmp_path_factory.mktemp("idx")
    p = index._number_path(root, number)
    p.parent.mkdir(parents=True)
    p.write_bytes(content)
    got = only_vault_errors(index.lookup_number, root, number)
    assert got is None or (len(got) == 32 and all(c in "0123456789abcdef" for c in got))
    (root / "index" / "sequence").write_bytes(content)
    n = only_vault_errors(index.peek_sequence, root)
    assert n is None or (isinstance(n, int) and n >= 1)


tree_like = st.fixed_dictionaries({"format": st.just(1) | json_values}, optional={
    "files": st.lists(st.lists(json_values, max_size=5) | st.just(["a", "0" * 64, 1, 420]), max_size=4) | json_values,
    "keys": st.dictionaries(st.text(max_size=12), json_values, max_size=3) | json_values})


@FUZZ
@given(raw=st.binary(max_size=200) | tree_like.map(lambda t: json.dumps(t).encode()))
def test_backup_trees(tmp_path_factory, raw):
    tree = only_vault_errors(restorer._parse_tree, raw, "trees/x")
    if tree is not None:  # what parses, the restore paths then confine or refuse
        dest = tmp_path_factory.mktemp("dest")
        for path, *_ in tree["files"]:
            out = only_vault_errors(restorer.confined, dest, path, what="t")
            assert out is None or out.resolve().is_relative_to(dest.resolve())


@FUZZ
@given(body=st.binary(max_size=200), header_json=json_values.map(lambda x: json.dumps(x).encode()) | st.binary(max_size=60),
       n=st.integers(0, 2**32 - 1) | st.none())
def test_packs(body, header_json, n):
    data = body + header_json + struct.pack("<I", len(header_json) if n is None else n)
    # Named as either format names a pack: by all its bytes (1) or by its header (2).
    for name in (hashlib.sha256(data).hexdigest(), hashlib.sha256(header_json).hexdigest()):
        entries = only_vault_errors(packs.read_trailer, name, data)
        if entries is not None:
            only_vault_errors(packs.blobs_of, "p", data, entries)


@FUZZ
@given(obj=json_values | st.fixed_dictionaries({"format": st.just(1)}, optional={
    "time": json_values | st.just("2026-01-01T00:00:00Z"), "tree": json_values | st.just("0" * 64),
    "packs": json_values, "other": json_values, "dossiers": json_values, "rings": json_values}))
def test_backup_indexes_and_snapshots(tmp_path_factory, obj):
    target = tmp_path_factory.mktemp("target")
    repo = Repo(f"file://{target}", cache=target / ".cache")
    repo.put("config", json.dumps({"format": 1, "vault_id": "v", "created_at": "x"}).encode())
    repo.put_json("snapshots/", obj)
    repo.put_json("index/", obj)
    only_vault_errors(repo.snapshots)
    only_vault_errors(repo.load_index)
    only_vault_errors(repo.resolve, "latest")


@FUZZ
@given(doc=toml_docs | st.fixed_dictionaries({"format": st.just(1), "dossier": st.just("d"),
                                              "keys": st.dictionaries(st.text(max_size=8), toml_values, max_size=3)}),
       raw=st.binary(max_size=100) | st.none())
def test_key_tables(doc, raw):
    data = raw if raw is not None else tomli_w.dumps(doc).encode()
    only_vault_errors(KeyTable.from_bytes, data, what="t")


@FUZZ
@given(raw=st.binary(max_size=600) | st.builds(lambda s: b"age-encryption.org/v1\n-> " + s, st.binary(max_size=200)))
def test_age_headers(raw):
    only_vault_errors(header.parse, io.BytesIO(raw))


@FUZZ
@given(raw=st.binary(max_size=400) | st.builds(
    lambda s: b"-----BEGIN AGE ENCRYPTED FILE-----\n" + s + b"\n-----END AGE ENCRYPTED FILE-----\n",
    st.binary(max_size=200)))
def test_age_armor(raw):
    only_vault_errors(lambda: armor.dearmor(io.BytesIO(raw)).read())


def _parsed(data: bytes) -> object:
    """``header.parse`` of ``data``: (the header, where the payload starts), or the error's message."""
    src = io.BytesIO(data)
    try:
        return header.parse(src), src.tell()
    except VaultError as e:
        return str(e)


def _parsed_in_memory(data: bytes) -> object:
    try:
        return header.parse_bytes(data)
    except VaultError as e:
        return str(e)


_KEYREF = (b"age-encryption.org/v1\n-> vault.invalid/keyref 0123456789abcdef0123456789abcdef\n\n--- "
           b"EIpPDsFs3XNQmQ1bDOSp0dDkGTbG16dvMqXIAy4gyWM\n")


@FUZZ
@given(at=st.integers(0, len(_KEYREF) - 1), byte=st.integers(0, 255), cut=st.integers(0, len(_KEYREF) + 1),
       tail=st.binary(max_size=20))
def test_a_header_read_in_memory_is_the_header_read_line_by_line(at, byte, cut, tail):
    # the vault's own one-stanza header (read with one match), changed a byte, cut short or followed
    # by more: the same header, payload start or error as the line-by-line reader
    changed = bytearray(_KEYREF)
    changed[at] = byte
    for data in (_KEYREF + tail, bytes(changed) + tail, _KEYREF[:cut]):
        assert _parsed_in_memory(data) == _parsed(data)


def test_the_one_match_reads_what_the_vault_writes():
    stanza = header.Stanza("vault.invalid/keyref", ("0123456789abcdef0123456789abcdef",), b"")
    data = header.serialize([stanza], bytes(16)) + b"payload"
    hdr, at = header.parse_bytes(data)
    assert header._ONE_STANZA.match(data) and (hdr, at) == _parsed(data) and data[at:] == b"payload"
    hdr.verify_mac(bytes(16))


def test_every_last_character_of_the_mac_reads_as_line_by_line():
    # 16 of the 64 are canonical; the other 48 are refused by both readers with the same error
    import string

    results = set()
    for c in (string.ascii_letters + string.digits + "+/").encode():
        data = _KEYREF[:-2] + bytes([c]) + b"\n"
        got = _parsed_in_memory(data)
        assert got == _parsed(data)
        results.add(isinstance(got, str))
    assert results == {True, False}


@pytest.mark.parametrize("extra", [-1, 0, 1, 2])
def test_a_stanza_line_at_the_line_cap_reads_as_line_by_line(extra):
    # an argument that brings the stanza line to the line reader's cap, or just past it: the one
    # match leaves such a header to the line reader, whose caps decide
    line = b"-> vault.invalid/keyref "
    arg = b"a" * (header.MAX_LINE - len(line) + extra)
    data = b"age-encryption.org/v1\n" + line + arg + b"\n\n--- " + _KEYREF[-44:]
    assert _parsed_in_memory(data) == _parsed(data)
