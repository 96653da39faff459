"""docs/FORMAT.md: every value marked ✓ is read from the document and checked against the code.

Each claim below is a pattern that must match the document *including its ✓ mark*; the value it
captures is compared with the constant in the code and, where cheap, with what the code really
writes. Removing a mark, changing a number in the text or changing the constant fails a test, and so
does a ✓ that no claim here covers (the document promises that a test checks every marked value).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest

from vault.office import documents, dossier
from vault.archive import manifests
from vault.store import identity, records, searchdb
from vault.archive import policy, searchseal, searchwrite
from vault import store
from vault.crypto import age, armor, scrypt, sign, stream
from vault.errors import FormatError
from vault.store.keytable import KEYREF_TYPE
from vault.archive.vault import DEFAULT_NUMBERING, FORMAT_VERSION, Vault
from vault.store.layout import NAME_RE

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "FORMAT.md").read_text(encoding="utf-8")
SCHEMAS = REPO / "schemas"
MARK = "✓"
LEGEND = f"are marked {MARK}."  # the sentence that explains the mark is not itself a claim

CLAIMS = {
    "vault format": r"MUST abort if it is\s+not `(\d+)` ✓",
    "record format": r"every record carries its own `format = (\d+)` ✓",
    "member key line": r"`(vault-member-1:)<age recipient>:<vaultsig1… signing key>` ✓",
    "roles": r"\*\*Role\*\* — one of ((?:`[a-z-]+`,?\s+)+)✓",
    "id bits": r"are (\d+) random bits in hex ✓",
    "tmp prefix": r"whose name starts with `([^`]+)` ✓",
    "schemas": r"JSON Schema in `schemas/` \(((?:`[a-z-]+`,?\s*(?:and\s+)?)+)for a line of the audit log\) ✓",
    "signature domain": r'The signature covers `"([^"]+)"` ✓',
    "numbering pattern": r"default `standard`, pattern `([^`]+)` ✓",
    "actions": r"a list of these actions ✓:\n\n((?:- `[^`]+` — [^\n]+\n)+)",
    "member name": r"`name` \(`([^`]+)` ✓\)",
    "keyref type": r"### The `([^`]+)` stanza\n(?:(?!\n## )[\s\S])*?somebody else defines ✓",
    "categories": r"`category` \(((?:`[a-z-]+`,?\s+)+)✓",
    "index identity": r'`HMAC-SHA-256\(K, "([^"]+)"\)` ✓',
    "index magic": r'"([^"]+)" ✓ \|\| uint32-be',
    "delta padding": r"multiple of (\d+) ✓\s+bytes",
    "identity work factor": r"\(work factor\s+2\^(\d+) ✓\)",
    "chunk size": r"exactly (\d+) ✓ plaintext bytes \((\d+) on disk\)",
    "max work factor": r"\| scrypt max work factor \(log2 N\) \| (\d+) ✓ \|",
    "audit domain": r'Ed25519 signature by `member` over `"([^"]+)"` ✓',
}


def claim(name: str) -> re.Match:
    m = re.search(CLAIMS[name], DOC)
    assert m, f"docs/FORMAT.md no longer states the ✓-marked value '{name}' (pattern {CLAIMS[name]!r})"
    return m


def ticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def checked_elsewhere() -> set[int]:
    """Marks an area's own test checks by quoting the document's words up to the ✓ (e.g. §16 in
    tests/test_backup.py: ``"Files under 1 MiB ✓" in section``)."""
    covered = set()
    for test in (REPO / "tests").glob("test_*.py"):
        if test.name == Path(__file__).name:
            continue
        for phrase in re.findall(r'"([^"\n]{6,}✓)"', test.read_text(encoding="utf-8")):
            covered |= {m.end() - 1 for m in re.finditer(re.escape(phrase), DOC)}
    return covered


def test_every_mark_is_covered_by_a_claim():
    marks = {m.start() for m in re.finditer(MARK, DOC)} - {DOC.index(LEGEND) + len(LEGEND) - 2}
    covered = checked_elsewhere()
    for name in CLAIMS:
        m = claim(name)
        covered |= {m.start() + i for i, ch in enumerate(m.group(0)) if ch == MARK}
    stray = sorted(marks - covered)
    where = [DOC.count("\n", 0, pos) + 1 for pos in stray]
    assert not stray, (f"docs/FORMAT.md lines {where}: ✓-marked values that no test checks "
                       "(add a claim here, or check the value in the area's test quoting the words up to the ✓)")


# -- §0 and §3: format versions, schemas, signatures ------------------------------------------------

def test_vault_format_version(tmp_path):
    assert int(claim("vault format").group(1)) == FORMAT_VERSION == 2
    (tmp_path / "vault.toml").write_text("format = 3\n")
    with pytest.raises(FormatError, match="unsupported format"):
        Vault.open(tmp_path)
    (tmp_path / "vault.toml").write_text("format = 1\n")
    with pytest.raises(FormatError, match="format 1") as e:
        Vault.open(tmp_path)
    assert "vault migrate" in e.value.hint


def test_every_record_schema_requires_the_format():
    want = int(claim("record format").group(1))
    schemas = sorted(SCHEMAS.glob("*.schema.json"))
    assert schemas
    for p in schemas:
        if p.name == "audit-entry.schema.json":
            continue  # a line of the JSON audit log, not a record
        s = json.loads(p.read_text())
        assert "format" in s["required"], f"{p.name} does not require format"
        # The genesis record carries the vault's format; every other record its own (unchanged).
        assert s["properties"]["format"] == {"const": FORMAT_VERSION if p.name == "vault.schema.json" else want}, p.name


def test_named_schemas_exist_and_load():
    names = ticked(claim("schemas").group(1))
    # Every schema the vault ships is named in §3, and every named one exists.
    assert sorted(names) == sorted(p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json"))
    for n in names:
        assert (SCHEMAS / f"{n}.schema.json").is_file(), n
        assert records._schema(n)["type"] == "object"


def test_signature_domain():
    domain = claim("signature domain").group(1).replace("\\n", "\n").encode()
    assert domain == records.SIGNATURE_DOMAIN == b"vault-record-v1\n"
    ident = identity.MemberIdentity.generate()
    secret = ident.sign_secret
    rec = records.sign_record({"format": 1, "name": "zoë", "n": 2}, signer="alice", key=ident)
    # Rebuilt from the document's words: domain || sorted compact JSON, non-ASCII unescaped.
    body = '{"format":1,"n":2,"name":"zoë"}'
    sign.verify(sign.signing_public_of(secret), domain + body.encode(), base64.b64decode(rec["signature"]["ed25519"]))


# -- §1, §5, §6: members, roles, actions -------------------------------------------------------------

def test_member_key_line():
    prefix = claim("member key line").group(1)
    assert prefix == identity.PUBLIC_PREFIX == "vault-member-1:"
    line = identity.MemberIdentity.generate().public.line()
    assert re.fullmatch(re.escape(prefix) + r"age1pq1[02-9ac-hj-np-z]+:vaultsig1[02-9ac-hj-np-z]+", line)


def test_roles():
    roles = ticked(claim("roles").group(1))
    assert roles == list(policy.ROLES)
    assert sorted(policy.DEFAULT_POLICY["roles"]) == sorted(roles)
    schema = json.loads((SCHEMAS / "policy.schema.json").read_text())
    assert sorted(schema["properties"]["roles"]["propertyNames"]["enum"]) == sorted(roles)


def test_actions_listed_each_with_what_it_allows():
    lines = claim("actions").group(1).splitlines()
    listed = [re.match(r"- `([^`]+)` — (.+)", ln).group(1) for ln in lines]
    assert len(listed) == len(set(listed)), "an action is listed twice in §5"
    missing, extra = set(policy.ACTIONS) - set(listed), set(listed) - set(policy.ACTIONS)
    assert not missing, f"docs/FORMAT.md §5 does not list the actions {sorted(missing)} (vault.policy.ACTIONS)"
    assert not extra, f"docs/FORMAT.md §5 lists actions the code does not have: {sorted(extra)}"
    for ln in lines:
        assert len(ln.split(" — ", 1)[1].strip()) > 10, f"§5: say what {ln} allows"
    schema = json.loads((SCHEMAS / "policy.schema.json").read_text())
    may = schema["properties"]["roles"]["additionalProperties"]["properties"]["may"]["items"]["enum"]
    assert sorted(may) == sorted(listed)
    for role in policy.DEFAULT_POLICY["roles"].values():
        assert set(role["may"]) <= set(listed)


def test_member_name_pattern():
    pattern = claim("member name").group(1)
    assert NAME_RE.pattern == f"^{pattern}$"
    schema = json.loads((SCHEMAS / "member.schema.json").read_text())
    assert schema["properties"]["name"]["pattern"] == f"^{pattern}$"


# -- §2, §4, §8, §9: what a small vault really writes ------------------------------------------------

@pytest.fixture(scope="module")
def small_vault(tmp_path_factory):
    """A vault with one dossier holding one document, built through the library (no identity file)."""
    root = tmp_path_factory.mktemp("format") / "vault"
    ident = identity.MemberIdentity.generate()
    v = Vault.init(root, supervisor="alice", key=ident.public)
    actor = v.act_as(ident)
    number = dossier.create(actor, customer_type="enterprise", business="network-services", dept="sales",
                            profile={"name": "Format Test Co", "contact": ["ft@example.org"]})
    src = root.parent / "doc.txt"
    src.write_bytes(b"invented content\n")
    documents.add(actor, number, [src], category="contract", source="test", date="2026-01-02", original=True)
    return v, number


def test_ids_are_128_bit_hex(small_vault):
    bits = int(claim("id bits").group(1))
    hexid = re.compile(f"[0-9a-f]{{{bits // 4}}}")
    v, number = small_vault
    m = manifests.load_manifest(v, manifests.resolve(v, number))
    d = m.documents[0]
    for value in (v.config["id"], m.id, d.id, d.key, d.meta_key, m.profile[0].key):
        assert hexid.fullmatch(value), value
    for name in ("vault", "manifest"):
        s = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        assert s["properties"]["id"]["pattern"] == f"^[0-9a-f]{{{bits // 4}}}$"


def test_tmp_prefix(tmp_path):
    prefix = claim("tmp prefix").group(1)
    assert store.TMP_PREFIX == prefix == ".tmp-"
    with store.atomic_writer(tmp_path / "f") as f:
        f.write(b"x")
        assert [p.name[: len(prefix)] for p in tmp_path.iterdir()] == [prefix]
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_default_numbering_pattern(small_vault):
    from plugins import numbering

    pattern = claim("numbering pattern").group(1)
    assert DEFAULT_NUMBERING["options"]["pattern"] == numbering.DEFAULT_PATTERN == pattern
    v, number = small_vault
    assert v.config["numbering"]["options"]["pattern"] == pattern
    assert re.fullmatch(r"E-\d{4}-000001", number)


def test_keyref_stanza_type(small_vault):
    m = claim("keyref type")
    stanza_type = m.group(1)
    assert stanza_type == KEYREF_TYPE == "vault.invalid/keyref"
    assert f"-> {stanza_type} <key-id>" in m.group(0)
    v, number = small_vault
    man = manifests.load_manifest(v, manifests.resolve(v, number))
    d = man.documents[0]
    with open(v.layout.document(man.id, d.id), "rb") as f:
        hdr = age.read_header(f)
    assert [(s.type, s.args) for s in hdr.stanzas] == [(stanza_type, (d.key,))]


def test_categories():
    assert ticked(claim("categories").group(1)) == list(manifests.CATEGORIES)
    schema = json.loads((SCHEMAS / "manifest.schema.json").read_text())
    assert sorted(schema["properties"]["documents"]["items"]["properties"]["category"]["enum"]) == \
        sorted(manifests.CATEGORIES)


# -- §11, §12, §13: tokens, identity files, payload, caps --------------------------------------------

def test_search_index_constants():
    assert claim("index identity").group(1).encode() == searchseal.IDENTITY_LABEL == b"vault-search-identity-v1"
    assert claim("index magic").group(1).replace("\\n", "\n").encode() == searchdb.MAGIC
    assert int(claim("delta padding").group(1)) == searchwrite.DELTA_PAD == 1024
    key = bytes(range(32))
    seed = hmac.new(key, b"vault-search-identity-v1", hashlib.sha256).digest()
    from vault.crypto import bech32

    assert bech32.decode(searchseal.identity_text(key))[1] == seed


def test_identity_file_work_factor(tmp_path, monkeypatch):
    wf = int(claim("identity work factor").group(1))
    assert identity.SCRYPT_WORK_FACTOR == scrypt.DEFAULT_WORK_FACTOR == wf == 18
    # Only the header is inspected here: skip the real 2**18 derivation (seconds) with a dummy key.
    monkeypatch.setattr(scrypt, "_wrap_key", lambda passphrase, salt, work_factor: bytes(32))
    identity.save_identity(tmp_path / "id.key", identity.MemberIdentity.generate(), "pw")
    with open(tmp_path / "id.key", "rb") as f:
        assert f.read(1) == b"-", "identity files are armored"
        f.seek(0)
        hdr = age.read_header(armor.dearmor(f))
    assert [(s.type, s.args[1]) for s in hdr.stanzas] == [("scrypt", str(wf))]


def test_chunk_size():
    m = claim("chunk size")
    assert int(m.group(1)) == stream.CHUNK_SIZE == 65536
    assert int(m.group(2)) == stream.CHUNK_SIZE + stream.TAG_SIZE
    blob = age.encrypt_bytes(b"\0" * (stream.CHUNK_SIZE + 1), [age.ScryptPassphrase("x", work_factor=1)])
    payload = blob.split(b"\n---", 1)[1].split(b"\n", 1)[1]
    # nonce || one full chunk || a final chunk of one byte
    assert len(payload) == stream.NONCE_SIZE + int(m.group(2)) + 1 + stream.TAG_SIZE


def test_max_scrypt_work_factor():
    cap = int(claim("max work factor").group(1))
    assert scrypt.MAX_WORK_FACTOR == cap == 22
    with pytest.raises(ValueError):
        age.ScryptPassphrase("x", work_factor=cap + 1)
    blob = age.encrypt_bytes(b"secret", [age.ScryptPassphrase("x", work_factor=1)])
    head, rest = blob.split(b"\n", 1)
    stanza, rest = rest.split(b"\n", 1)
    assert stanza.startswith(b"-> scrypt ") and stanza.endswith(b" 1")
    over = head + b"\n" + stanza[:-1] + str(cap + 1).encode() + b"\n" + rest
    # Refused as malformed before any scrypt work is done (a header must not cost a reader 8 GiB).
    with pytest.raises(FormatError):
        age.decrypt_bytes(over, [age.ScryptPassphrase("x")])


# -- §18: the audit trail ----------------------------------------------------------------------------

def test_audit_signature_domain():
    from vault.archive import authority

    domain = claim("audit domain").group(1).replace("\\n", "\n").encode()
    assert domain == authority.DOMAIN == b"vault-audit-v2\n"
    entry = {"seq": 1, "member": "zoë", "sig": "x"}
    assert authority.entry_bytes(entry) == domain + '{"member":"zoë","seq":1}'.encode()


def test_the_path_table_is_the_repository_layout(small_vault):
    """FORMAT §2 and vault.store.layout.PATHS list the same paths, and a real vault's files are in it."""
    from vault.store.layout import PATHS, Layout

    block = DOC.split("## 2. Repository layout", 1)[1].split("```")[1]
    documented = {p for line in block.splitlines() if line.strip()
                  for p in re.match(r"[^\s,]+(?:, [^\s,]+)*", line.strip()).group(0).split(", ")}
    assert documented == set(PATHS.values())
    lay = Layout(Path("/v"))
    assert lay.grant_key("d" * 32, "G-000001") == Path(f"/v/keys/grants/{'d' * 32}.G-000001.age")
    assert lay.request("R-000001", ".decision") == Path("/v/requests/R-000001.decision.toml")
    h = hashlib.sha256(b"E-2026-000001").hexdigest()
    assert lay.issued_number("E-2026-000001") == Path(f"/v/index/numbers/{h[:2]}/{h}")
    patterns = [re.compile(re.sub(r"<[^>]+>", "[^/]+", re.escape(t).replace(r"\<", "<").replace(r"\>", ">")) + r"\Z")
                for t in PATHS.values()]
    # Counters other than the dossier sequence (requests, grants, ...) sit beside it in index/.
    root = small_vault[0].root
    for f in root.rglob("*"):
        rel = f.relative_to(root).as_posix()
        if f.is_file() and not rel.startswith("index/") or rel == "index/sequence":
            assert any(p.match(rel) for p in patterns), f"{rel} is in no entry of the path table"
