"""A payload held in memory, opened in place (``stream.authenticate_payload``, ``age.authenticate``,
``age.decrypt_bytes``), accepts exactly what the streaming ``decrypt_payload`` accepts."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.crypto import age
from vault.crypto.stream import CHUNK_SIZE, NONCE_SIZE, TAG_SIZE, authenticate_payload, decrypt_payload, encrypt_payload
from vault.errors import AuthenticationError, FormatError, NoIdentityMatchError

KEY = bytes(range(16))
ENC = CHUNK_SIZE + TAG_SIZE
BATCH = 16 * ENC  # the chunks decrypt_payload reads as one batch


def _encrypt(plain: bytes) -> bytes:
    out = io.BytesIO()
    encrypt_payload(KEY, io.BytesIO(plain), out)
    return out.getvalue()


def _streamed(payload: bytes) -> bytes | None:
    out = io.BytesIO()
    try:
        decrypt_payload(KEY, io.BytesIO(payload), out)
    except AuthenticationError:
        return None
    return out.getvalue()


def _in_place(payload: bytes, keep: bool) -> bytes | None:
    out = memoryview(bytearray(len(payload))) if keep else None
    try:
        n = authenticate_payload(KEY, memoryview(payload), out)
    except AuthenticationError:
        return None
    return bytes(out[:n]) if out is not None else b"?" * n


def _agree(payload: bytes) -> None:
    want = _streamed(payload)
    assert _in_place(payload, keep=True) == want
    got = _in_place(payload, keep=False)
    assert (got is None) == (want is None) and (want is None or len(got) == len(want))


# Sizes at chunk and batch boundaries: the in-place path must number chunks and set final flags
# exactly as the streamed one does across its 1 MiB batches.
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 16 * CHUNK_SIZE, 16 * CHUNK_SIZE + 1,
         32 * CHUNK_SIZE, 33 * CHUNK_SIZE + 7]


@pytest.mark.parametrize("size", SIZES)
def test_intact_payload_is_accepted_with_its_plaintext(size):
    plain = os.urandom(size)
    payload = _encrypt(plain)
    assert _in_place(payload, keep=True) == plain
    _agree(payload)


@pytest.mark.parametrize("size", SIZES)
def test_truncated_payload_is_refused_as_streaming_refuses_it(size):
    payload = _encrypt(os.urandom(size))
    body = len(payload) - NONCE_SIZE
    # every chunk and batch boundary, a byte either side of it, and inside the nonce
    cuts = {0, 1, NONCE_SIZE - 1, NONCE_SIZE, len(payload) - 1}
    for b in range(0, body + 1, ENC):
        cuts |= {NONCE_SIZE + b - 1, NONCE_SIZE + b, NONCE_SIZE + b + 1}
    for cut in sorted(c for c in cuts if 0 <= c < len(payload)):
        truncated = payload[:cut]
        assert _streamed(truncated) is None or cut == len(payload)
        _agree(truncated)


@pytest.mark.parametrize("size", [CHUNK_SIZE, 16 * CHUNK_SIZE, 17 * CHUNK_SIZE + 3])
@pytest.mark.parametrize("garbage", [b"\x00", bytes(TAG_SIZE), bytes(ENC), bytes(BATCH)])
def test_trailing_bytes_are_refused(size, garbage):
    payload = _encrypt(os.urandom(size)) + garbage
    assert _in_place(payload, keep=False) is None
    _agree(payload)


def test_chunks_of_another_batch_swapped_in_are_refused():
    payload = bytearray(_encrypt(os.urandom(20 * CHUNK_SIZE)))
    a, b = NONCE_SIZE + 2 * ENC, NONCE_SIZE + 17 * ENC
    payload[a : a + ENC], payload[b : b + ENC] = payload[b : b + ENC], payload[a : a + ENC]
    assert _in_place(bytes(payload), keep=False) is None
    _agree(bytes(payload))


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 18 * CHUNK_SIZE), at=st.integers(0, 19 * ENC), flip=st.booleans(),
       extra=st.binary(max_size=40))
def test_property_any_damage_is_judged_alike(size, at, flip, extra):
    payload = bytearray(_encrypt(bytes(size)))
    at = min(at, len(payload) - 1)
    if flip:
        payload[at] ^= 0x80
    else:
        del payload[at:]
    payload += extra
    _agree(bytes(payload))


def _file(plain: bytes) -> tuple[bytes, age.Identity]:
    ident = age.parse_identity(age.generate_identity("x25519"))
    return age.encrypt_bytes(plain, [ident.recipient()]), ident  # type: ignore[attr-defined]


def _decrypt(data: bytes, ident: age.Identity) -> bytes | type[Exception]:
    out = io.BytesIO()
    try:
        age.decrypt(io.BytesIO(data), out, [ident])
    except (FormatError, AuthenticationError, NoIdentityMatchError) as e:
        return type(e)
    return out.getvalue()


def _decrypt_bytes(data: bytes, ident: age.Identity) -> bytes | type[Exception]:
    try:
        return age.decrypt_bytes(data, [ident])
    except (FormatError, AuthenticationError, NoIdentityMatchError) as e:
        return type(e)


def test_decrypt_bytes_agrees_with_decrypt_on_every_damaged_byte_of_a_file():
    data, ident = _file(os.urandom(CHUNK_SIZE + 10))
    assert _decrypt_bytes(data, ident) == _decrypt(data, ident)
    stranger = age.parse_identity(age.generate_identity("x25519"))
    assert _decrypt_bytes(data, stranger) is NoIdentityMatchError
    header_end = data.index(b"\n---") + 1
    header_end = data.index(b"\n", header_end) + 1
    # every header byte, the nonce and the chunk edges: flipped, and the file cut there
    spots = [*range(header_end + NONCE_SIZE + 1), *range(len(data) - TAG_SIZE - 2, len(data))]
    for i in spots:
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        for bad in (bytes(flipped), data[:i]):
            got = _decrypt_bytes(bad, ident)
            assert got == _decrypt(bad, ident)
            assert isinstance(got, type)  # refused


def test_authenticate_takes_the_parsed_header_and_refuses_what_decrypt_refuses():
    data, ident = _file(os.urandom(3 * CHUNK_SIZE))
    src = io.BytesIO(data)
    hdr = age.read_header(src)
    age.authenticate(hdr, memoryview(data)[src.tell():], [ident])
    with pytest.raises(AuthenticationError):
        age.authenticate(hdr, memoryview(data)[src.tell():-1], [ident])
    with pytest.raises(FormatError):
        age.authenticate(hdr, memoryview(data)[src.tell():src.tell() + NONCE_SIZE - 1], [ident])
    with pytest.raises(NoIdentityMatchError):
        age.authenticate(hdr, memoryview(data)[src.tell():], [age.parse_identity(age.generate_identity("x25519"))])
