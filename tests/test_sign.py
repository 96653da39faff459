"""Ed25519 member signatures: round trips, tampering, key encodings, RFC 8032 known answers."""

from __future__ import annotations

import pytest

from vault.crypto import bech32
from vault.crypto.sign import (
    encode_secret,
    generate_signing_key,
    sign,
    signing_public_of,
    verify,
)
from vault.errors import AuthenticationError, FormatError


def test_sign_verify_round_trip() -> None:
    secret = generate_signing_key()
    public = signing_public_of(secret)
    signature = sign(secret, b"approve grant 42")
    assert len(signature) == 64
    verify(public, b"approve grant 42", signature)


@pytest.mark.parametrize("flip", [0, 31, 32, 63])
def test_tampered_signature_rejected(flip: int) -> None:
    secret = generate_signing_key()
    signature = bytearray(sign(secret, b"manifest"))
    signature[flip] ^= 0x01
    with pytest.raises(AuthenticationError):
        verify(signing_public_of(secret), b"manifest", bytes(signature))


def test_tampered_message_and_wrong_key_rejected() -> None:
    secret = generate_signing_key()
    signature = sign(secret, b"manifest")
    with pytest.raises(AuthenticationError):
        verify(signing_public_of(secret), b"manifesT", signature)
    with pytest.raises(AuthenticationError):
        verify(signing_public_of(generate_signing_key()), b"manifest", signature)
    with pytest.raises(AuthenticationError):
        verify(signing_public_of(secret), b"manifest", signature[:63])


def test_key_encoding() -> None:
    secret = generate_signing_key()
    assert secret.startswith("VAULT-SIGN-SECRET-KEY-1") and secret == secret.upper()
    public = signing_public_of(secret)
    assert public.startswith("vaultsig1") and public == public.lower()
    hrp, seed = bech32.decode(secret)
    assert hrp == "VAULT-SIGN-SECRET-KEY-" and len(seed) == 32
    assert encode_secret(seed) == secret
    assert bech32.decode(public)[0] == "vaultsig"


def test_key_encoding_rejects_the_wrong_kind() -> None:
    secret = generate_signing_key()
    public = signing_public_of(secret)
    with pytest.raises(FormatError):
        sign(public, b"x")  # a public key is not a secret key
    with pytest.raises(FormatError):
        verify(secret, b"x", bytes(64))  # and the other way round
    with pytest.raises(FormatError):
        sign(secret.lower(), b"x")  # secret keys are upper case, like age identities
    with pytest.raises(FormatError):
        sign(secret[:-1] + ("Q" if secret[-1] != "Q" else "P"), b"x")  # bad checksum


# RFC 8032, Section 7.1, "TEST 2" (one-byte message 0x72).
RFC8032_SECRET = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC8032_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
RFC8032_MESSAGE = bytes.fromhex("72")
RFC8032_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def test_rfc8032_test_2_known_answer() -> None:
    secret = encode_secret(RFC8032_SECRET)
    public = signing_public_of(secret)
    assert public == bech32.encode("vaultsig", RFC8032_PUBLIC)
    assert sign(secret, RFC8032_MESSAGE) == RFC8032_SIGNATURE
    verify(public, RFC8032_MESSAGE, RFC8032_SIGNATURE)
