"""age v1 files (c2sp.org/age): the public encryption API of the vault.

Every encrypted blob of the vault is an age v1 file; this module is the only one the
rest of the project imports from ``vault.crypto`` for encryption. Native recipient
types: ``mlkem768x25519`` (age1pq1..., the default), ``X25519`` (age1...) and
``scrypt`` (passphrases, alone in a header). Armor is detected on input.

Extension point: anything with ``wrap(file_key) -> list[Stanza]`` is a Recipient and
anything with ``unwrap(stanzas) -> bytes | None`` is an Identity. Vault-specific types
(e.g. ``vault.example/keyref``) plug in this way and MUST use fully qualified stanza
type names. ``unwrap`` sees every stanza of the header; it MUST ignore types it does
not know, return None when none is addressed to it ("not mine"), and raise FormatError
for a malformed stanza of its own type. A Recipient MAY have ``labels`` (a frozenset
of str): encrypt refuses recipients whose label sets differ, as age does, so that a
post-quantum file is never also wrapped to a classical key (label ``postquantum``).
Stanzas of the native types are validated for every header, whatever identities are
given, and unknown stanza types are ignored.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, BinaryIO, Protocol, Sequence

if TYPE_CHECKING:
    from typing_extensions import Buffer  # the buffer protocol (collections.abc.Buffer from 3.12)

from vault.crypto import bech32, header, mlkem, scrypt, stream, x25519
from vault.crypto.armor import ArmorWriter, dearmor
from vault.crypto.header import Header, Stanza
from vault.crypto.mlkem import HybridIdentity, HybridRecipient
from vault.crypto.scrypt import ScryptPassphrase
from vault.crypto.x25519 import X25519Identity, X25519Recipient
from vault.errors import FormatError, NoIdentityMatchError, UsageError
from vault.i18n import N_

__all__ = [
    "Encryptor", "Header", "Identity", "Recipient", "ScryptPassphrase", "Stanza", "authenticate", "decrypt", "decrypt_bytes",
    "encrypt", "encrypt_bytes", "generate_identity", "identity_from_seed", "open_payload", "parse_identity",
    "parse_recipient", "read_header", "read_header_bytes", "recipient_of", "rewrap",
]  # fmt: skip

FILE_KEY_SIZE = 16
_WHITESPACE = b" \t\r\n"
_MAX_LEADING_WHITESPACE = 64 * 1024
_COPY_BLOCK = 1024 * 1024
_MAGIC = b"age-encryption.org/"


class Recipient(Protocol):
    """Something a file key can be wrapped to."""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """:return: the stanzas carrying ``file_key`` for this recipient."""


class Identity(Protocol):
    """Something that can unwrap a file key from a header's stanzas."""

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """:return: the file key, or None when no stanza is addressed to this identity.

        Raises FormatError for a malformed stanza of its own type."""


class _Chain(io.RawIOBase):
    """``prefix`` followed by ``rest``: lets us sniff bytes off a non-seekable stream."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        if self._prefix:
            view = memoryview(buffer).cast("B")
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        # Once the sniffed prefix is used up, read straight into the caller's buffer: a read() and a
        # copy here cost more CPU per GiB than the AEAD itself.
        readinto = getattr(self._rest, "readinto", None)
        if readinto is not None:
            return readinto(buffer) or 0
        view = memoryview(buffer).cast("B")
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _sniff(src: BinaryIO) -> bytes:
    """Read from ``src`` until the first non-whitespace byte (or EOF)."""
    prefix = b""
    while not prefix.lstrip(_WHITESPACE):
        block = src.read(64)
        if not block:
            break
        prefix += block
        if len(prefix) > _MAX_LEADING_WHITESPACE:
            raise FormatError(N_("age: too much leading whitespace"))
    return prefix


def _is_armored(prefix: bytes) -> bool:
    # A binary age file starts with "age-encryption.org/"; armor with "-----BEGIN".
    return prefix.lstrip(_WHITESPACE).startswith(b"-")


def _open_input(src: BinaryIO) -> tuple[BinaryIO, bool]:
    prefix = _sniff(src)
    reader = io.BufferedReader(_Chain(prefix, src))
    if _is_armored(prefix):
        return dearmor(reader), True
    return reader, False


def _read_exact(src: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n and (block := src.read(n - len(data))):
        data += block
    return data


def _check_native_stanzas(stanzas: Sequence[Stanza]) -> None:
    # Malformed stanzas of native types are rejected even when no identity of that
    # type is given, so whether a file parses never depends on who opens it.
    checks = {
        x25519.STANZA_TYPE: x25519.check_stanza,
        mlkem.STANZA_TYPE: mlkem.check_stanza,
        scrypt.STANZA_TYPE: scrypt.check_stanza,
    }
    for stanza in stanzas:
        if stanza.type in checks:
            checks[stanza.type](stanza)
    scrypt.check_alone(stanzas)


def _unwrap(hdr: Header, identities: Sequence[Identity]) -> bytes:
    """The file key of ``hdr``, after the header MAC has been verified with it."""
    _check_native_stanzas(hdr.stanzas)
    for identity in identities:
        file_key = identity.unwrap(hdr.stanzas)
        if file_key is None:
            continue
        if len(file_key) != FILE_KEY_SIZE:
            raise FormatError(N_("age header: unwrapped file key is not 16 bytes"))
        hdr.verify_mac(file_key)
        return file_key
    raise NoIdentityMatchError(N_("no identity matched any of the file's recipients"))


def _stanzas_for(recipients: Sequence[Recipient], file_key: bytes) -> list[Stanza]:
    if not recipients:
        raise UsageError(N_("age: no recipients"))
    labels = {frozenset(getattr(r, "labels", frozenset())) for r in recipients}
    if len(labels) != 1:
        # Mixing e.g. a post-quantum recipient with an X25519 one would silently
        # drop the post-quantum protection; a passphrase must be alone.
        raise UsageError(N_("age: these recipients cannot be mixed in one file"))
    return [stanza for r in recipients for stanza in r.wrap(file_key)]


def _payload_reader(reader: BinaryIO) -> BinaryIO:
    # A missing or short nonce is a header failure (nothing of the payload exists).
    nonce = _read_exact(reader, stream.NONCE_SIZE)
    if len(nonce) != stream.NONCE_SIZE:
        raise FormatError(N_("age: file ends before the payload nonce"))
    return io.BufferedReader(_Chain(nonce, reader))


def encrypt(src: BinaryIO, dst: stream.Sink, recipients: Sequence[Recipient], *, armor: bool = False) -> None:
    """Encrypt all of ``src`` to ``recipients`` as an age file written to ``dst``."""
    file_key = os.urandom(FILE_KEY_SIZE)
    data = header.serialize(_stanzas_for(recipients, file_key), file_key)
    out = ArmorWriter(dst) if armor else dst
    out.write(data)
    stream.encrypt_payload(file_key, src, out)
    if isinstance(out, ArmorWriter):
        out.close()


class Encryptor:
    """An age file written piece by piece: ``write()`` plaintext as it arrives, then ``close()``.

    The push-style twin of ``encrypt`` for data that arrives in pieces (an upload being parsed):
    the header goes out at once, memory stays at one chunk whatever the size. Until ``close()`` the
    output is not a valid age file. ``dst`` is not closed.
    """

    def __init__(self, dst: stream.Sink, recipients: Sequence[Recipient]) -> None:
        file_key = os.urandom(FILE_KEY_SIZE)
        dst.write(header.serialize(_stanzas_for(recipients, file_key), file_key))
        self._payload = stream.PayloadWriter(file_key, dst)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._payload.write(data)

    def close(self) -> None:
        self._payload.close()

    def __enter__(self) -> "Encryptor":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()


def decrypt(src: BinaryIO, dst: stream.Sink, identities: Sequence[Identity]) -> None:
    """Decrypt the age file (binary or armored) in ``src`` to ``dst``.

    Only authenticated plaintext is written; on AuthenticationError what was written is
    the authenticated prefix of the plaintext and the caller must discard it.
    """
    reader, _ = _open_input(src)
    file_key = _unwrap(header.parse(reader), identities)
    stream.decrypt_payload(file_key, _payload_reader(reader), dst)


def authenticate(hdr: Header, payload: memoryview, identities: Sequence[Identity]) -> None:
    """What ``decrypt`` verifies of a binary age file whose header ``read_header`` parsed (``hdr``) and
    whose payload, from its nonce on, is held in ``payload``: the file key, the header MAC and every
    chunk, raising as ``decrypt`` would; no plaintext is released. The header is not parsed again."""
    _in_place(hdr, payload, identities, None)


def _in_place(hdr: Header, payload: memoryview, identities: Sequence[Identity], out: memoryview | None) -> int:
    file_key = _unwrap(hdr, identities)
    if len(payload) < stream.NONCE_SIZE:
        raise FormatError(N_("age: file ends before the payload nonce"))
    return stream.authenticate_payload(file_key, payload, out)


def encrypt_bytes(data: bytes, recipients: Sequence[Recipient], *, armor: bool = False) -> bytes:
    """``encrypt`` for data held in memory."""
    out = io.BytesIO()
    encrypt(io.BytesIO(data), out, recipients, armor=armor)
    return out.getvalue()


def decrypt_bytes(data: bytes, identities: Sequence[Identity]) -> bytes:
    """``decrypt`` for data held in memory."""
    if data.startswith(_MAGIC):
        # Binary with nothing before it (what the vault writes): what ``decrypt`` reads, read in place.
        hdr, at = header.parse_bytes(data)
        plain = bytearray(len(data))
        n = _in_place(hdr, memoryview(data)[at:], identities, memoryview(plain))
        return bytes(memoryview(plain)[:n])
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, identities)
    return out.getvalue()


def read_header(src: BinaryIO) -> Header:
    """Parse the header of a binary age file, leaving ``src`` at the payload start."""
    return header.parse(src)


def read_header_bytes(data: bytes | memoryview) -> tuple[Header, int]:
    """``read_header`` of a binary age file held in memory: (the header, where its payload starts)."""
    return header.parse_bytes(data)


def rewrap(
    src: BinaryIO, dst: stream.Sink, identities: Sequence[Identity], recipients: Sequence[Recipient]
) -> None:
    """Write ``src`` to ``dst`` with a new header (same file key) and the payload bytes unchanged.

    Armored input gives armored output. The payload is not decrypted, only copied.
    """
    reader, armored = _open_input(src)
    file_key = _unwrap(header.parse(reader), identities)
    out = ArmorWriter(dst) if armored else dst
    out.write(header.serialize(_stanzas_for(recipients, file_key), file_key))
    while block := reader.read(_COPY_BLOCK):
        out.write(block)
    if isinstance(out, ArmorWriter):
        out.close()


def open_payload(src: BinaryIO, identities: Sequence[Identity]) -> stream.PayloadReader:
    """Random access to the plaintext of an age file.

    A seekable binary ``src`` is read in place (keep it open); armored or non-seekable
    input is first copied, de-armored, to a temporary file.
    """
    if src.seekable():
        start = src.tell()
        armored = _is_armored(_sniff(src))
        src.seek(start)
        if not armored:
            file_key = _unwrap(header.parse(src), identities)
            payload_start = src.tell()
            if len(_read_exact(src, stream.NONCE_SIZE)) != stream.NONCE_SIZE:
                raise FormatError(N_("age: file ends before the payload nonce"))
            src.seek(payload_start)
            return stream.PayloadReader(file_key, src)
    reader, _ = _open_input(src)
    file_key = _unwrap(header.parse(reader), identities)
    payload = _payload_reader(reader)
    import shutil  # here: only random access to armored or piped input needs a spool
    import tempfile

    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    shutil.copyfileobj(payload, spool, _COPY_BLOCK)
    spool.seek(0)
    return stream.PayloadReader(file_key, spool)


def parse_identity(text: str) -> Identity:
    """Parse an ``AGE-SECRET-KEY-PQ-1...`` or ``AGE-SECRET-KEY-1...`` identity string."""
    hrp, _ = bech32.decode(text.strip())
    if hrp == mlkem.IDENTITY_HRP:
        return HybridIdentity.parse(text.strip())
    if hrp == x25519.IDENTITY_HRP:
        return X25519Identity.parse(text.strip())
    raise FormatError(N_("not an age identity (AGE-SECRET-KEY-PQ-1... or AGE-SECRET-KEY-1...)"))


def parse_recipient(text: str) -> Recipient:
    """Parse an ``age1pq1...`` or ``age1...`` recipient string."""
    hrp, _ = bech32.decode(text.strip())
    if hrp == mlkem.RECIPIENT_HRP:
        return HybridRecipient.parse(text.strip())
    if hrp == x25519.RECIPIENT_HRP:
        return X25519Recipient.parse(text.strip())
    raise FormatError(N_("not an age recipient (age1pq1... or age1...)"))


def identity_from_seed(seed: bytes) -> HybridIdentity:
    """The mlkem768x25519 identity whose 32-byte seed is ``seed`` (e.g. a one-time token's bytes)."""
    return HybridIdentity(seed)


def generate_identity(kind: str = "mlkem768x25519") -> str:
    """A new identity string: ``kind`` is "mlkem768x25519" (default) or "x25519"."""
    if kind == "mlkem768x25519":
        return str(HybridIdentity.generate())
    if kind == "x25519":
        return str(X25519Identity.generate())
    raise UsageError(N_("unknown identity kind {kind!r} (use mlkem768x25519 or x25519)"), kind=kind)


def recipient_of(identity_text: str) -> str:
    """The recipient string of an identity string."""
    identity = parse_identity(identity_text)
    return str(identity.recipient())  # type: ignore[attr-defined]
