"""The CCTV age test kit: one case per vector file, each stating its expected outcome."""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import pytest

from vault.crypto.age import ScryptPassphrase, decrypt, parse_identity
from vault.errors import AuthenticationError, FormatError, NoIdentityMatchError

# The kit lives with the tests (tests/vectors/age, licence and provenance in its README).
KIT = Path(__file__).resolve().parent / "vectors" / "age"
KIT_SIZE = 143
SUMS = KIT / "SHA256SUMS"
NOT_VECTORS = {"README.md", "SHA256SUMS"}
VECTORS = sorted(p.name for p in KIT.iterdir() if p.name not in NOT_VECTORS) if KIT.is_dir() else []

EXPECTED_ERRORS = {
    "header failure": FormatError,
    "armor failure": FormatError,
    "HMAC failure": AuthenticationError,
    "payload failure": AuthenticationError,
    "no match": NoIdentityMatchError,
}


def test_kit_is_complete() -> None:
    """Every vector of the kit is here, unchanged, and nothing else: a missing, edited or extra file fails."""
    assert KIT.is_dir(), f"CCTV age test kit missing at {KIT}"
    listed = dict(reversed(line.split("  ", 1)) for line in SUMS.read_text().splitlines())
    assert len(listed) == KIT_SIZE, f"SHA256SUMS lists {len(listed)} vectors, the kit has {KIT_SIZE}"
    assert sorted(listed) == VECTORS, f"missing: {sorted(set(listed) - set(VECTORS))}, extra: {sorted(set(VECTORS) - set(listed))}"
    changed = [n for n, h in listed.items() if hashlib.sha256((KIT / n).read_bytes()).hexdigest() != h]
    assert not changed, f"vectors changed: {changed}"


def test_every_vector_is_read() -> None:
    """Each vector states an outcome this suite checks: none can be left unread by an unknown expectation."""
    outcomes = {name: _load(name)[0]["expect"][0] for name in VECTORS}
    assert len(outcomes) == KIT_SIZE
    unknown = {n: e for n, e in outcomes.items() if e != "success" and e not in EXPECTED_ERRORS}
    assert not unknown, f"vectors with an outcome the suite does not check: {unknown}"
    assert {"success", *EXPECTED_ERRORS} == set(outcomes.values())


def _load(name: str) -> tuple[dict[str, list[str]], bytes]:
    raw = (KIT / name).read_bytes()
    head, body = raw.split(b"\n\n", 1)
    fields: dict[str, list[str]] = {}
    for line in head.decode("utf-8").splitlines():
        key, value = line.split(": ", 1)
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return fields, body


@pytest.mark.parametrize("name", VECTORS or ["<kit missing>"])
def test_vector(name: str) -> None:
    assert VECTORS, f"CCTV age test kit missing at {KIT}"
    fields, body = _load(name)
    identities = [parse_identity(text) for text in fields.get("identity", [])]
    # The kit's passphrase vectors use work factor 10; the identity caps at 22 whatever it is built with.
    identities += [ScryptPassphrase(p, work_factor=10) for p in fields.get("passphrase", [])]
    expect = fields["expect"][0]
    out = io.BytesIO()
    if expect == "success":
        decrypt(io.BytesIO(body), out, identities)
    else:
        with pytest.raises(EXPECTED_ERRORS[expect]):
            decrypt(io.BytesIO(body), out, identities)
        if expect == "HMAC failure":
            assert out.getvalue() == b"", "plaintext released before the header MAC was checked"
    if expect in ("success", "payload failure"):
        assert hashlib.sha256(out.getvalue()).hexdigest() == fields["payload"][0]
