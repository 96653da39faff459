"""The native age hybrid post-quantum recipient type mlkem768x25519 (age1pq1..., AGE-SECRET-KEY-PQ-1...).

Recipient bytes (1216) = ML-KEM-768 encapsulation key (1184) || X25519 public key (32),
checked against the example in the C2SP age spec. HPKE enc (1120) = ML-KEM-768
ciphertext (1088) || X25519 ephemeral share (32).
"""

from __future__ import annotations

import os
from typing import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke

from vault.crypto import bech32, rawkeys
from vault.crypto.header import Stanza, b64decode, b64encode
from vault.errors import FormatError
from vault.i18n import N_

STANZA_TYPE = "mlkem768x25519"
RECIPIENT_HRP = "age1pq"
IDENTITY_HRP = "AGE-SECRET-KEY-PQ-"
LABEL = "postquantum"
_INFO = b"age-encryption.org/mlkem768x25519"
_MLKEM_PUBLIC = 1184
_PUBLIC = _MLKEM_PUBLIC + 32
_ENC = 1120
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def check_stanza(stanza: Stanza) -> bytes:
    """Validate an mlkem768x25519 stanza's shape and return its HPKE enc.

    The body length is checked before decapsulating to close partitioning oracles.
    """
    if len(stanza.args) != 1:
        raise FormatError(N_("age mlkem768x25519 stanza: wrong number of arguments"))
    enc = b64decode(stanza.args[0])
    if len(enc) != _ENC:
        raise FormatError(N_("age mlkem768x25519 stanza: enc is not 1120 bytes"))
    if len(stanza.body) != 32:
        raise FormatError(N_("age mlkem768x25519 stanza: body is not 32 bytes"))
    return enc


class HybridRecipient:
    """Wraps file keys to an ML-KEM-768 + X25519 public key with HPKE."""

    labels: frozenset[str] = frozenset({LABEL})

    def __init__(self, public: bytes) -> None:
        if len(public) != _PUBLIC:
            raise FormatError(N_("age mlkem768x25519 recipient: key is not 1216 bytes"))
        try:
            self._key = hpke.MLKEM768X25519PublicKey(
                rawkeys.mlkem_public(public[:_MLKEM_PUBLIC]),
                rawkeys.x25519_public(public[_MLKEM_PUBLIC:]),
            )
        except ValueError as err:
            raise FormatError(N_("age mlkem768x25519 recipient: invalid key")) from err
        self.public = public

    @classmethod
    def parse(cls, text: str) -> HybridRecipient:
        hrp, data = bech32.decode(text)
        if hrp != RECIPIENT_HRP:
            raise FormatError(N_("not an age mlkem768x25519 recipient"))
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self.public)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        sealed = _SUITE.encrypt(file_key, self._key, info=_INFO)
        return [Stanza(STANZA_TYPE, (b64encode(sealed[:_ENC]),), sealed[_ENC:])]


class HybridIdentity:
    """Unwraps mlkem768x25519 stanzas; the identity is a 32-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise FormatError(N_("age mlkem768x25519 identity: seed is not 32 bytes"))
        shake = hashes.Hash(hashes.SHAKE256(digest_size=96))
        shake.update(seed)
        expanded = shake.finalize()
        mlkem_key = rawkeys.mlkem_seed(expanded[:64])
        self._x25519 = rawkeys.x25519_private(expanded[64:])
        self._key = hpke.MLKEM768X25519PrivateKey(mlkem_key, self._x25519)
        self._seed = seed
        self.public = (
            mlkem_key.public_key().public_bytes_raw() + self._x25519.public_key().public_bytes_raw()
        )

    @classmethod
    def generate(cls) -> HybridIdentity:
        return cls(os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> HybridIdentity:
        hrp, data = bech32.decode(text)
        if hrp != IDENTITY_HRP:
            raise FormatError(N_("not an age mlkem768x25519 identity"))
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(IDENTITY_HRP, self._seed)

    def __repr__(self) -> str:
        return "<HybridIdentity>"  # never the seed

    def recipient(self) -> HybridRecipient:
        return HybridRecipient(self.public)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            enc = check_stanza(stanza)
            try:
                # The X25519 half must not yield the all-zero secret (low-order or
                # identity point): checked explicitly rather than relying on HPKE.
                self._x25519.exchange(rawkeys.x25519_public(enc[-32:]))
            except ValueError as err:
                raise FormatError(N_("age mlkem768x25519 stanza: low-order X25519 share")) from err
            try:
                return _SUITE.decrypt(enc + stanza.body, self._key, info=_INFO)
            except InvalidTag:  # ML-KEM implicit rejection or a bad tag: not for this key
                continue
        return None
