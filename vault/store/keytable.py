"""Dossier key tables and the ``vault.invalid/keyref`` stanza that points a file at one of their keys."""

from __future__ import annotations

import base64
import os  # os.urandom, as secrets does (importing secrets loads random, on every command)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence


from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError, PermissionDeniedError
from vault.i18n import N_
from vault.store import write_atomic
from vault.store import tomlread, tomlwrite
from vault.store import read_regular

# A reserved name (RFC 2606 ".invalid"): fully qualified as the age spec recommends, and it can
# never collide with a stanza type somebody else defines for a domain they own.
KEYREF_TYPE = "vault.invalid/keyref"


def new_key_id() -> str:
    """A fresh opaque key id (128 random bits, hex)."""
    return os.urandom(16).hex()


class KeyRefRecipient:
    """Recipient that stores no key: it records the file key so the caller can put it in a key table.

    The stanza says only which key-table entry holds the file key; the file is useless without
    the table, so shredding the entry shreds the file [DESIGN §4].
    """

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.file_key: bytes | None = None

    def wrap(self, file_key: bytes) -> list[age.Stanza]:
        self.file_key = file_key
        return [age.Stanza(KEYREF_TYPE, (self.key_id,), b"")]


class KeyRefIdentity:
    """Identity that unwraps ``keyref`` stanzas from a decrypted key table."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys

    def unwrap(self, stanzas: Sequence[age.Stanza]) -> bytes | None:
        for s in stanzas:
            if s.type != KEYREF_TYPE:
                continue
            if len(s.args) != 1 or s.body:
                raise FormatError(N_("malformed keyref stanza"))
            key = self.keys.get(s.args[0])
            if key is not None:
                return key
        return None


@dataclass
class KeyTable:
    """The plaintext of ``keys/<dossier>.age``: key id -> 16-byte file key."""

    dossier: str
    keys: dict[str, bytes] = field(default_factory=dict)

    def identity(self) -> KeyRefIdentity:
        return KeyRefIdentity(self.keys)

    def to_bytes(self) -> bytes:
        return tomlwrite.dumps(
            {"format": 1, "dossier": self.dossier, "keys": {k: v.hex() for k, v in sorted(self.keys.items())}}
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str) -> "KeyTable":
        try:
            d = tomlread.loads(data.decode())
            keys = {k: bytes.fromhex(v) for k, v in d["keys"].items()}
            if d.get("format") != 1 or any(len(v) != 16 for v in keys.values()):
                raise ValueError
            return cls(d["dossier"], keys)
        except (tomlread.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise IntegrityError(N_("{what}: key table content is damaged"), what=what) from None


def read_key_table(path: Path, identities: Sequence[age.Identity], *, dossier: str,
                   data: bytes | None = None) -> KeyTable:
    """Decrypt a key table (``data``, or the file at ``path``); PermissionDeniedError when none of
    ``identities`` may read it."""
    what = str(path)
    try:
        blob = read_regular(path) if data is None else data
    except FileNotFoundError:
        raise IntegrityError(N_("{what}: key table missing"), what=what) from None
    try:
        table = KeyTable.from_bytes(age.decrypt_bytes(blob, identities), what=what)
    except NoIdentityMatchError:
        raise PermissionDeniedError(
            N_("you hold no key for dossier key table {name}"),
            hint=N_("reading a dossier needs the archive role or an approved, granted consultation request"), name=path.name,
        ) from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("{what}: key table damaged or tampered with"), what=what) from None
    if table.dossier != dossier:
        # A key table swapped in from another dossier must not be used to read this one.
        raise IntegrityError(N_("{what}: key table belongs to another dossier"), what=what)
    return table


def encrypt_key_table(table: KeyTable, recipients: Sequence[age.Recipient]) -> bytes:
    """The table encrypted to ``recipients`` with a fresh file key."""
    return age.encrypt_bytes(table.to_bytes(), recipients)


def write_key_table(path: Path, table: KeyTable, recipients: Sequence[age.Recipient], *, sync: bool = True) -> None:
    """Encrypt the table to ``recipients`` with a fresh file key and replace the file atomically
    (``sync=False``: the caller makes it durable, with ``sync_files``, before anything relies on it)."""
    write_atomic(path, age.encrypt_bytes(table.to_bytes(), recipients), mode=0o600, sync=sync)


def seal(data: bytes, table: KeyTable) -> tuple[str, bytes]:
    """Encrypt ``data`` under a new key entered in ``table``; return (key id, age file bytes)."""
    kid = new_key_id()
    r = KeyRefRecipient(kid)
    blob = age.encrypt_bytes(data, [r])
    assert r.file_key is not None
    table.keys[kid] = r.file_key
    return kid, blob


def unseal(blob: bytes, table: KeyTable, *, what: str) -> bytes:
    """Decrypt a sealed blob with the key table; damage is an IntegrityError naming ``what``."""
    try:
        return age.decrypt_bytes(blob, [table.identity()])
    except NoIdentityMatchError:
        raise IntegrityError(N_("{what}: its key is not in the key table (destroyed or damaged)"), what=what) from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("{what}: sealed data damaged or tampered with"), what=what) from None


# -- The sealed-field codec: how a record carries data sealed under a key of its dossier's table. --
# A field holds base64 of the age file; its key id sits beside it (``key``, ``meta_key``, ``note_key``).
# Crypto-shredding a dossier's keys makes every such field unreadable with them.


def seal_field(data: bytes, table: KeyTable) -> tuple[str, str]:
    """Seal ``data`` under a new key of ``table``: (key id, the field's text)."""
    kid, blob = seal(data, table)
    return kid, base64.b64encode(blob).decode()


def open_field(text: str, table: KeyTable, *, what: str) -> bytes:
    """The bytes a sealed field holds; damage is an IntegrityError naming ``what``."""
    try:
        blob = base64.b64decode(text, validate=True)
    except ValueError:
        raise IntegrityError(N_("{what}: sealed data damaged or tampered with"), what=what) from None
    return unseal(blob, table, what=what)


def seal_values(values: Mapping[str, Any], table: KeyTable) -> tuple[str, str]:
    """Seal a table of values (a profile version, a document's metadata) as TOML: (key id, field text)."""
    return seal_field(tomlwrite.dumps(dict(values)).encode(), table)


def open_values(text: str, table: KeyTable, *, what: str) -> dict[str, Any]:
    """The table of values a sealed field holds (``seal_values``)."""
    return tomlread.loads(open_field(text, table, what=what).decode())
