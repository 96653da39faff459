"""The native age X25519 recipient type (age1..., AGE-SECRET-KEY-1...)."""

from __future__ import annotations

import os
from typing import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.crypto import bech32, rawkeys
from vault.crypto.header import Stanza, b64decode, b64encode
from vault.errors import FormatError
from vault.i18n import N_

STANZA_TYPE = "X25519"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "AGE-SECRET-KEY-"
_INFO = b"age-encryption.org/v1/X25519"
_ZERO_NONCE = bytes(12)


def _wrap_key(shared: bytes, share: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=share + recipient, info=_INFO).derive(shared)


def check_stanza(stanza: Stanza) -> bytes:
    """Validate an X25519 stanza's shape and return the ephemeral share.

    The body length is checked before any decryption to close partitioning-oracle
    attacks (a ciphertext valid under many keys would reveal which key was used).
    """
    if len(stanza.args) != 1:
        raise FormatError(N_("age X25519 stanza: wrong number of arguments"))
    share = b64decode(stanza.args[0])
    if len(share) != 32:
        raise FormatError(N_("age X25519 stanza: share is not 32 bytes"))
    if len(stanza.body) != 32:
        raise FormatError(N_("age X25519 stanza: body is not 32 bytes"))
    return share


class X25519Recipient:
    """Wraps file keys to an X25519 public key."""

    labels: frozenset[str] = frozenset()

    def __init__(self, public: bytes) -> None:
        if len(public) != 32:
            raise FormatError(N_("age X25519 recipient: key is not 32 bytes"))
        self.public = public

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        hrp, data = bech32.decode(text)
        if hrp != RECIPIENT_HRP:
            raise FormatError(N_("not an age X25519 recipient"))
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self.public)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        ephemeral = rawkeys.x25519_generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(rawkeys.x25519_public(self.public))
        body = ChaCha20Poly1305(_wrap_key(shared, share, self.public)).encrypt(_ZERO_NONCE, file_key, None)
        return [Stanza(STANZA_TYPE, (b64encode(share),), body)]


class X25519Identity:
    """Unwraps X25519 stanzas with a 32-byte secret scalar."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise FormatError(N_("age X25519 identity: key is not 32 bytes"))
        self._key = rawkeys.x25519_private(secret)
        self._secret = secret
        self.public = self._key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        hrp, data = bech32.decode(text)
        if hrp != IDENTITY_HRP:
            raise FormatError(N_("not an age X25519 identity"))
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(IDENTITY_HRP, self._secret)

    def __repr__(self) -> str:
        return f"<X25519Identity {bech32.encode(RECIPIENT_HRP, self.public)}>"  # never the secret

    def recipient(self) -> X25519Recipient:
        return X25519Recipient(self.public)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            share = check_stanza(stanza)
            try:
                shared = self._key.exchange(rawkeys.x25519_public(share))
            except ValueError as err:
                # All-zero shared secret (low-order share): the spec says abort, since
                # such a stanza is a forgery that any key "decrypts" the same way.
                raise FormatError(N_("age X25519 stanza: low-order share")) from err
            key = _wrap_key(shared, share, self.public)
            try:
                return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue  # addressed to someone else
        return None
