"""The CCTV age test kit: one case per vector file, each stating its expected outcome."""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import pytest

from vault.crypto.age import ScryptPassphrase, decrypt, parse_identity
from vault.errors import AuthenticationError, FormatError, NoIdentityMatchError

KIT = Path(__file__).resolve().parents[1].parent / "shared" / "testkit" / "age"
VECTORS = sorted(p.name for p in KIT.iterdir()) if KIT.is_dir() else []

EXPECTED_ERRORS = {
    "header failure": FormatError,
    "armor failure": FormatError,
    "HMAC failure": AuthenticationError,
    "payload failure": AuthenticationError,
    "no match": NoIdentityMatchError,
}


def test_kit_is_present() -> None:
    assert KIT.is_dir(), f"CCTV age test kit missing at {KIT} (expected ../shared/testkit/age)"
    assert len(VECTORS) == 143, f"expected 143 CCTV vectors in {KIT}, found {len(VECTORS)}"


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
