"""The native age scrypt (passphrase) recipient type."""

from __future__ import annotations

import os
import re
from typing import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vault.crypto.header import Stanza, b64decode, b64encode
from vault.errors import FormatError
from vault.i18n import N_

STANZA_TYPE = "scrypt"
MAX_WORK_FACTOR = 22  # as age: 2**22 x 1 KiB x 8 = 4 GiB of work, ~1 s; more is a DoS from a header
DEFAULT_WORK_FACTOR = 18
_SALT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")


def check_stanza(stanza: Stanza) -> tuple[bytes, int]:
    """Validate an scrypt stanza's shape; return (salt, log2 work factor).

    The work factor is read from an untrusted header, so it is capped before use.
    """
    if len(stanza.args) != 2:
        raise FormatError(N_("age scrypt stanza: wrong number of arguments"))
    salt = b64decode(stanza.args[0])
    if len(salt) != 16:
        raise FormatError(N_("age scrypt stanza: salt is not 16 bytes"))
    text = stanza.args[1]
    if not (text.isascii() and _WORK_FACTOR.fullmatch(text)):
        raise FormatError(N_("age scrypt stanza: malformed work factor"))
    if len(text) > 2 or int(text) > MAX_WORK_FACTOR:
        raise FormatError(N_("age scrypt stanza: work factor above {MAX_WORK_FACTOR}"), MAX_WORK_FACTOR=MAX_WORK_FACTOR)
    if len(stanza.body) != 32:
        raise FormatError(N_("age scrypt stanza: body is not 32 bytes"))
    return salt, int(text)


def check_alone(stanzas: Sequence[Stanza]) -> None:
    """An scrypt stanza must be the only stanza: a passphrase file must not also open
    with someone's key, or the passphrase would not authenticate the sender."""
    if len(stanzas) > 1 and any(s.type == STANZA_TYPE for s in stanzas):
        raise FormatError(N_("age header: an scrypt stanza must be the only stanza"))


def _wrap_key(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SALT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    return kdf.derive(passphrase)


class ScryptPassphrase:
    """A passphrase, usable both as a Recipient (encrypt) and an Identity (decrypt).

    ``work_factor`` (log2 N) is what ``wrap`` uses; tests pass a low one. ``unwrap``
    accepts any work factor up to MAX_WORK_FACTOR.
    """

    def __init__(self, passphrase: str | bytes, *, work_factor: int = DEFAULT_WORK_FACTOR) -> None:
        if not 1 <= work_factor <= MAX_WORK_FACTOR:
            raise ValueError(f"scrypt work factor must be in 1..{MAX_WORK_FACTOR}")
        self._passphrase = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
        if not self._passphrase:
            raise ValueError("empty passphrase")
        self.work_factor = work_factor
        # A label no other recipient has: encrypt() refuses to mix it with anything.
        self.labels = frozenset({os.urandom(16).hex()})

    def __repr__(self) -> str:
        return f"<ScryptPassphrase work_factor={self.work_factor}>"  # never the passphrase

    def wrap(self, file_key: bytes) -> list[Stanza]:
        salt = os.urandom(16)
        key = _wrap_key(self._passphrase, salt, self.work_factor)
        body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
        return [Stanza(STANZA_TYPE, (b64encode(salt), str(self.work_factor)), body)]

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        check_alone(stanzas)
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            salt, work_factor = check_stanza(stanza)
            key = _wrap_key(self._passphrase, salt, work_factor)
            try:
                return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                return None  # wrong passphrase
        return None
