"""Ed25519 signatures of members, with keys encoded as Bech32 strings like age keys.

Secret key: Bech32, HRP ``VAULT-SIGN-SECRET-KEY-``, data = the 32-byte RFC 8032 private
key (seed), upper case: ``VAULT-SIGN-SECRET-KEY-1...``.
Public key: Bech32, HRP ``vaultsig``, data = the 32-byte RFC 8032 public key, lower
case: ``vaultsig1...``. Signatures are the raw 64-byte RFC 8032 signatures.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault.crypto import bech32
from vault.errors import AuthenticationError, FormatError
from vault.i18n import N_

SECRET_HRP = "VAULT-SIGN-SECRET-KEY-"
PUBLIC_HRP = "vaultsig"
SIGNATURE_SIZE = 64


def _secret_key(secret_text: str) -> Ed25519PrivateKey:
    hrp, data = bech32.decode(secret_text.strip())
    if hrp != SECRET_HRP or len(data) != 32:
        raise FormatError(N_("not a vault signing secret key (VAULT-SIGN-SECRET-KEY-1...)"))
    return Ed25519PrivateKey.from_private_bytes(data)


@functools.lru_cache(maxsize=4096)
def _public_key(public_text: str) -> Ed25519PublicKey:
    # Cached: replaying a history verifies thousands of signatures by a few dozen keys, and the
    # Bech32 decoding costs more than the verification.
    hrp, data = bech32.decode(public_text.strip())
    if hrp != PUBLIC_HRP or len(data) != 32:
        raise FormatError(N_("not a vault signing public key (vaultsig1...)"))
    try:
        return Ed25519PublicKey.from_public_bytes(data)
    except ValueError as err:
        raise FormatError(N_("not a valid Ed25519 public key")) from err


def encode_secret(seed: bytes) -> str:
    """The secret key string of a 32-byte Ed25519 private key."""
    if len(seed) != 32:
        raise ValueError("an Ed25519 private key is 32 bytes")
    return bech32.encode(SECRET_HRP, seed)


def generate_signing_key() -> str:
    """A new Ed25519 secret key string (keep it encrypted: it is not protected)."""
    return encode_secret(Ed25519PrivateKey.generate().private_bytes_raw())


def signing_public_of(secret_text: str) -> str:
    """The ``vaultsig1...`` public key string of a secret key string."""
    return bech32.encode(PUBLIC_HRP, _secret_key(secret_text).public_key().public_bytes_raw())


def sign(secret_text: str, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message``."""
    return _secret_key(secret_text).sign(message)


def verify(public_text: str, message: bytes, signature: bytes) -> None:
    """Return if ``signature`` is valid for ``message``; raise AuthenticationError otherwise."""
    key = _public_key(public_text)
    if len(signature) != SIGNATURE_SIZE:
        raise AuthenticationError(N_("signature does not verify"))
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise AuthenticationError(N_("signature does not verify")) from None


def check_public_key(public_text: str) -> None:
    """Return if ``public_text`` is a valid ``vaultsig1...`` key string; raise FormatError otherwise."""
    _public_key(public_text)
