"""Property tests for the age layer: header and armor round trips, chunk boundaries, rewrap, random access."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.crypto import bech32, header
from vault.crypto.age import (
    ScryptPassphrase,
    Stanza,
    decrypt_bytes,
    encrypt_bytes,
    generate_identity,
    open_payload,
    parse_identity,
    parse_recipient,
    read_header,
    recipient_of,
    rewrap,
)
from vault.crypto.armor import ArmorWriter, dearmor
from vault.errors import FormatError, NoIdentityMatchError, UsageError

CHUNK = 65536
FAST = settings(max_examples=25, deadline=None)
SLOW = settings(max_examples=8, deadline=None)

X_SECRET = generate_identity("x25519")
X_ID, X_RCPT = parse_identity(X_SECRET), parse_recipient(recipient_of(X_SECRET))
PQ_SECRET = generate_identity()
PQ_ID, PQ_RCPT = parse_identity(PQ_SECRET), parse_recipient(recipient_of(PQ_SECRET))

vchar_words = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
# Base64 bodies wrap at 64 columns = 48 bytes: sizes at and around the line boundaries.
body_sizes = st.sampled_from([0, 1, 2, 3, 32, 47, 48, 49, 63, 64, 95, 96, 97, 144]) | st.integers(0, 300)
stanzas = st.builds(
    lambda kind, args, size, seed: Stanza(kind, tuple(args), (seed * (size // 32 + 1))[:size]),
    vchar_words,
    st.lists(vchar_words, max_size=4),
    body_sizes,
    st.binary(min_size=32, max_size=32),
)
chunk_sizes = st.builds(lambda k, d: max(0, k * CHUNK + d), st.integers(0, 3), st.sampled_from([-1, 0, 1]))


@FAST
@given(st.lists(stanzas, min_size=1, max_size=5), st.binary(min_size=16, max_size=16))
def test_header_round_trip(items: list[Stanza], file_key: bytes) -> None:
    data = header.serialize(items, file_key)
    src = io.BytesIO(data + b"payload")
    parsed = header.parse(src)
    assert list(parsed.stanzas) == items
    assert src.read() == b"payload"  # left exactly at the payload start
    parsed.verify_mac(file_key)
    assert header.serialize(parsed.stanzas, file_key) == data  # one canonical encoding
    for line in data.split(b"\n"):
        assert len(line) <= 64 or line.startswith(b"-> ")


@FAST
@given(st.binary(max_size=200))
def test_base64_canonical_round_trip(data: bytes) -> None:
    text = header.b64encode(data)
    assert "=" not in text and header.b64decode(text) == data


@pytest.mark.parametrize("text", ["AAA=", "AB", "A", "AAA\n", "AA AA", "AAé"])
def test_base64_rejects_padding_and_non_canonical(text: str) -> None:
    with pytest.raises(FormatError):
        header.b64decode(text)


@FAST
@given(st.binary(max_size=300), st.sampled_from(["age", "AGE-SECRET-KEY-", "age1pq", "vaultsig"]))
def test_bech32_round_trip(data: bytes, hrp: str) -> None:
    text = bech32.encode(hrp, data)
    assert bech32.decode(text) == (hrp, data)
    with pytest.raises(FormatError):
        bech32.decode(text[0].swapcase() + text[1:])  # mixed case


@FAST
@given(st.binary(max_size=1000), st.lists(st.integers(1, 100), max_size=20), st.booleans())
def test_armor_round_trip(data: bytes, splits: list[int], crlf: bool) -> None:
    out = io.BytesIO()
    writer, pos = ArmorWriter(out), 0
    for n in splits:
        writer.write(data[pos : pos + n])
        pos += n
    writer.write(data[pos:])
    writer.close()
    text = out.getvalue()
    assert all(len(line) <= 64 for line in text.split(b"\n"))
    if crlf:
        text = text.replace(b"\n", b"\r\n")
    assert dearmor(io.BufferedReader(io.BytesIO(b"\n \t" + text + b"\n\n"))).read() == data


@SLOW
@given(chunk_sizes, st.booleans())
def test_encrypt_decrypt_across_chunk_boundaries(size: int, armored: bool) -> None:
    data = os.urandom(size)
    blob = encrypt_bytes(data, [X_RCPT], armor=armored)
    assert blob.startswith(b"-----BEGIN") == armored
    assert decrypt_bytes(blob, [PQ_ID, X_ID]) == data
    with pytest.raises(NoIdentityMatchError):
        decrypt_bytes(blob, [PQ_ID])


@SLOW
@given(chunk_sizes, st.booleans())
def test_hybrid_round_trip(size: int, armored: bool) -> None:
    data = os.urandom(size)
    blob = encrypt_bytes(data, [PQ_RCPT], armor=armored)
    assert decrypt_bytes(blob, [X_ID, PQ_ID]) == data


def test_scrypt_round_trip_and_wrong_passphrase() -> None:
    blob = encrypt_bytes(b"secret", [ScryptPassphrase("pw", work_factor=4)], armor=True)
    assert decrypt_bytes(blob, [ScryptPassphrase("pw")]) == b"secret"
    with pytest.raises(NoIdentityMatchError):
        decrypt_bytes(blob, [ScryptPassphrase("nope")])


def test_recipients_that_cannot_be_mixed() -> None:
    with pytest.raises(UsageError):
        encrypt_bytes(b"x", [PQ_RCPT, X_RCPT])  # would drop the post-quantum protection
    with pytest.raises(UsageError):
        encrypt_bytes(b"x", [ScryptPassphrase("pw", work_factor=4), X_RCPT])
    with pytest.raises(UsageError):
        encrypt_bytes(b"x", [])
    with pytest.raises(ValueError):
        ScryptPassphrase("pw", work_factor=23)


@SLOW
@given(chunk_sizes, st.booleans())
def test_rewrap_keeps_the_payload(size: int, armored: bool) -> None:
    data = os.urandom(size)
    blob = encrypt_bytes(data, [X_RCPT], armor=armored)
    out = io.BytesIO()
    rewrap(io.BytesIO(blob), out, [X_ID], [PQ_RCPT])
    assert out.getvalue().startswith(b"-----BEGIN") == armored
    if not armored:
        old, new = io.BytesIO(blob), io.BytesIO(out.getvalue())
        read_header(old), read_header(new)
        assert new.read() == old.read()  # payload bytes identical
    assert decrypt_bytes(out.getvalue(), [PQ_ID]) == data
    with pytest.raises(NoIdentityMatchError):
        decrypt_bytes(out.getvalue(), [X_ID])


@SLOW
@given(
    st.integers(0, 3 * CHUNK + 5),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 3 * CHUNK + 10), st.integers(0, 2 * CHUNK)), min_size=1, max_size=6),
)
def test_open_payload_read_at(size: int, armored: bool, ranges: list[tuple[int, int]]) -> None:
    data = os.urandom(size)
    reader = open_payload(io.BytesIO(encrypt_bytes(data, [X_RCPT], armor=armored)), [X_ID])
    assert reader.size == size
    for offset, length in ranges:
        assert reader.read_at(offset, length) == data[offset : offset + length]


class _KeyRef:
    """A vault-style extension recipient/identity: a fully qualified stanza type."""

    TYPE = "vault.example/keyref"

    def __init__(self, ref: str, key: bytes) -> None:
        self.ref, self.key = ref, key

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return [Stanza(self.TYPE, (self.ref,), bytes(a ^ b for a, b in zip(file_key, self.key)))]

    def unwrap(self, stanzas) -> bytes | None:
        for s in stanzas:
            if s.type == self.TYPE and s.args == (self.ref,):
                if len(s.body) != 16:
                    raise FormatError("keyref stanza: body is not 16 bytes")
                return bytes(a ^ b for a, b in zip(s.body, self.key))
        return None


def test_extension_point_and_unknown_stanzas_are_ignored() -> None:
    plugin = _KeyRef("dossier-7", os.urandom(16))
    blob = encrypt_bytes(b"hello", [plugin, X_RCPT])  # neither has labels: they may be mixed
    assert read_header(io.BytesIO(blob)).stanzas[0].type == "vault.example/keyref"
    assert decrypt_bytes(blob, [plugin]) == b"hello"
    assert decrypt_bytes(blob, [X_ID]) == b"hello"  # the native identity ignores the plugin stanza
    with pytest.raises(NoIdentityMatchError):
        decrypt_bytes(blob, [_KeyRef("other", plugin.key)])
