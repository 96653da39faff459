"""Member identities: an age identity plus an Ed25519 signing key, stored passphrase-protected."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from vault.crypto import age, sign
from vault.errors import FormatError, InputError, NoIdentityMatchError
from vault.i18n import N_
from vault.store import write_atomic
from vault.store import tomlread, tomlwrite

PUBLIC_PREFIX = "vault-member-1:"
# Cost of the scrypt wrapping an identity file. 2**18 is age's own default; tests lower it through
# this module attribute, which no command-line option or file can set.
SCRYPT_WORK_FACTOR = 18


@dataclass(frozen=True)
class PublicKey:
    """A member's public key line: ``vault-member-1:<age recipient>:<vaultsig1…>``."""

    recipient: str
    signing: str

    def line(self) -> str:
        return f"{PUBLIC_PREFIX}{self.recipient}:{self.signing}"

    @classmethod
    def parse(cls, text: str) -> "PublicKey":
        return _parse_public(text.strip())

    @classmethod
    def _parse(cls, text: str) -> "PublicKey":
        parts = text[len(PUBLIC_PREFIX):].split(":") if text.startswith(PUBLIC_PREFIX) else []
        if len(parts) != 2:
            raise InputError(
                N_("not a member public key line"),
                hint=N_("pass the line printed by 'vault keygen' (it starts with vault-member-1:)"),
            )
        try:
            age.parse_recipient(parts[0])
            sign.check_public_key(parts[1])
        except FormatError as e:
            raise InputError(N_("not a member public key line: {e}"), e=e) from None
        return cls(parts[0], parts[1])


class MemberKey(Protocol):
    """What acting as a member needs: the public key line, an age identity and a signer.

    ``MemberIdentity`` holds the secrets in this process; ``vault.agent.client.AgentIdentity`` asks
    an agent that holds them. Neither the Actor nor the records it signs reads a secret directly.
    """

    @property
    def public(self) -> "PublicKey": ...

    def age_identity(self) -> age.Identity: ...

    def sign(self, message: bytes) -> bytes:
        """The member's 64-byte Ed25519 signature of ``message``."""


@dataclass(frozen=True)
class MemberIdentity:
    """The secret half of a member: what unlocks rings and grants, and what signs their actions."""

    age_secret: str
    sign_secret: str

    @classmethod
    def generate(cls) -> "MemberIdentity":
        return cls(age.generate_identity("mlkem768x25519"), sign.generate_signing_key())

    @property
    def public(self) -> PublicKey:
        return PublicKey(age.recipient_of(self.age_secret), sign.signing_public_of(self.sign_secret))

    def age_identity(self) -> age.Identity:
        return age.parse_identity(self.age_secret)

    def sign(self, message: bytes) -> bytes:
        return sign.sign(self.sign_secret, message)

    def to_bytes(self) -> bytes:
        return tomlwrite.dumps({"format": 1, "age": self.age_secret, "sign": self.sign_secret}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "MemberIdentity":
        try:
            d = tomlread.loads(data.decode())
            return cls(d["age"], d["sign"])
        except (tomlread.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise FormatError(N_("identity file content is damaged")) from None


@lru_cache(maxsize=4096)
def _parse_public(text: str) -> PublicKey:
    # Member records are verified on every command; Bech32-decoding a 2 KB hybrid recipient each
    # time dominated their cost. Parsing is pure, so the result is cached by the text.
    return PublicKey._parse(text)


@lru_cache(maxsize=4096)
def signing_key(text: str) -> str:
    """The signing key of a member key line, checked; the age recipient is left undecoded.

    Verifying a signature needs only this part, and decoding a 2 KB hybrid recipient is most of a
    small command's cost of reading member keys (``PublicKey.parse`` decodes both).
    """
    text = text.strip()
    parts = text[len(PUBLIC_PREFIX):].split(":") if text.startswith(PUBLIC_PREFIX) else []
    if len(parts) != 2:
        raise InputError(N_("not a member public key line"),
                         hint=N_("pass the line printed by 'vault keygen' (it starts with vault-member-1:)"))
    try:
        sign.check_public_key(parts[1])
    except FormatError as e:
        raise InputError(N_("not a member public key line: {e}"), e=e) from None
    return parts[1]


def save_identity(path: Path, ident: MemberIdentity, passphrase: str, *, work_factor: int | None = None) -> None:
    """Write ``ident`` to ``path`` as an age scrypt file (mode 0600); refuses to overwrite."""
    if not passphrase:
        raise InputError(N_("empty passphrase"), hint=N_("choose a passphrase to protect the identity"))
    if path.exists():
        raise InputError(N_("{path} already exists"), param="out", path=path)
    blob = age.encrypt_bytes(ident.to_bytes(), [age.ScryptPassphrase(passphrase, work_factor=work_factor or SCRYPT_WORK_FACTOR)], armor=True)
    write_atomic(path, blob, mode=0o600)


def load_identity(path: Path, passphrase: str) -> MemberIdentity:
    """Decrypt an identity file; a wrong passphrase is one clear error."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise InputError(N_("identity file {path} not found"), param="identity", path=path) from None
    except IsADirectoryError:
        raise InputError(N_("identity file {path} is a directory"), path=path) from None
    try:
        return MemberIdentity.from_bytes(age.decrypt_bytes(blob, [age.ScryptPassphrase(passphrase)]))
    except NoIdentityMatchError:
        raise NoIdentityMatchError(N_("wrong passphrase for the identity file"), hint=N_("retry; check VAULT_PASSPHRASE_FILE")) from None
    except FormatError:
        raise FormatError(N_("{path} is not a vault identity file"), hint=N_("pass the file written by 'vault keygen'"), path=path) from None


def passphrase_from_env() -> str | None:
    """The passphrase named by ``VAULT_PASSPHRASE_FILE`` (for scripts), or None."""
    name = os.environ.get("VAULT_PASSPHRASE_FILE")
    if not name:
        return None
    try:
        return Path(name).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as e:
        raise InputError(N_("cannot read VAULT_PASSPHRASE_FILE: {strerror}"), strerror=e.strerror) from None
