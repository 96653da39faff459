"""Tests for the age payload layer (vault.crypto.stream): C2SP age.md, section "Payload"."""

from __future__ import annotations

import hashlib
import io
import os
import time
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.crypto import stream
from vault.crypto.stream import (
    CHUNK_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    PayloadReader,
    decrypt_payload,
    encrypt_payload,
)
from vault.errors import AuthenticationError

KEY = bytes(range(16))
NONCE = bytes(range(100, 116))
ENC = CHUNK_SIZE + TAG_SIZE
TESTKIT = Path(__file__).resolve().parent / "vectors" / "age"

# Plaintext sizes at and around the chunk boundaries (with 16 chunks in a worker batch, 17 crosses
# a batch), plus a few MiB to exercise the thread pool.
SIZES = [0, 1, 65535, 65536, 65537, 2 * 65536, 2 * 65536 + 1, 16 * 65536, 17 * 65536 + 5, 5 * 2**20 + 3]


def _data(n: int) -> bytes:
    return os.urandom(n)


def _encrypt(plain: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    encrypt_payload(key, io.BytesIO(plain), out)
    return out.getvalue()


def _decrypt(payload: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    decrypt_payload(key, io.BytesIO(payload), out)
    return out.getvalue()


def _spec_chunks(key: bytes, nonce: bytes, chunks: list[tuple[bytes, bool]]) -> bytes:
    """Build a payload straight from the spec text, chunk by chunk, final flags chosen by the caller."""
    payload_key = HKDF(algorithm=SHA256(), length=32, salt=nonce, info=b"payload").derive(key)
    aead = ChaCha20Poly1305(payload_key)
    out = [nonce]
    for counter, (plain, final) in enumerate(chunks):
        out.append(aead.encrypt(counter.to_bytes(11, "big") + bytes([final]), plain, None))
    return b"".join(out)


def _expect_failure(payload: bytes, released: bytes) -> None:
    out = io.BytesIO()
    with pytest.raises(AuthenticationError):
        decrypt_payload(KEY, io.BytesIO(payload), out)
    assert out.getvalue() == released


# Known answers.


def test_known_answer_two_chunks():
    plain = b"A" * CHUNK_SIZE + b"tail"
    expected = _spec_chunks(KEY, NONCE, [(plain[:CHUNK_SIZE], False), (plain[CHUNK_SIZE:], True)])
    out = io.BytesIO()
    stream._encrypt_payload_with_nonce(KEY, NONCE, io.BytesIO(plain), out)
    assert out.getvalue() == expected
    assert _decrypt(expected) == plain


def test_known_answer_empty_payload_is_one_empty_final_chunk():
    out = io.BytesIO()
    stream._encrypt_payload_with_nonce(KEY, NONCE, io.BytesIO(b""), out)
    assert out.getvalue() == _spec_chunks(KEY, NONCE, [(b"", True)])
    assert len(out.getvalue()) == NONCE_SIZE + TAG_SIZE


def test_known_answer_full_last_chunk_is_final():
    plain = b"\x07" * CHUNK_SIZE
    out = io.BytesIO()
    stream._encrypt_payload_with_nonce(KEY, NONCE, io.BytesIO(plain), out)
    assert out.getvalue() == _spec_chunks(KEY, NONCE, [(plain, True)])


def test_nonce_is_fresh():
    a, b = _encrypt(b"same"), _encrypt(b"same")
    assert a[:NONCE_SIZE] != b[:NONCE_SIZE] and a != b


def test_file_key_must_be_128_bits():
    with pytest.raises(ValueError):
        encrypt_payload(bytes(32), io.BytesIO(b"x"), io.BytesIO())


# Round trips.


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size):
    plain = _data(size)
    payload = _encrypt(plain)
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(payload) == NONCE_SIZE + size + chunks * TAG_SIZE
    assert _decrypt(payload) == plain
    reader = PayloadReader(KEY, io.BytesIO(payload))
    assert reader.size == size
    assert reader.read_at(0, size) == plain


def test_round_trip_through_files_and_raw_streams(tmp_path):
    plain = _data(3 * 2**20 + 17)
    src, enc, dec = tmp_path / "p", tmp_path / "e", tmp_path / "d"
    src.write_bytes(plain)
    with open(src, "rb", buffering=0) as s, open(enc, "wb", buffering=0) as d:
        encrypt_payload(KEY, s, d)
    with open(enc, "rb") as s, open(dec, "wb") as d:
        decrypt_payload(KEY, s, d)
    assert dec.read_bytes() == plain


class _Trickle(io.RawIOBase):
    """A source that returns at most 1000 bytes per read, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_short_reads_from_source():
    plain = _data(2 * CHUNK_SIZE + 3)
    out = io.BytesIO()
    encrypt_payload(KEY, _Trickle(plain), out)
    back = io.BytesIO()
    decrypt_payload(KEY, _Trickle(out.getvalue()), back)
    assert back.getvalue() == plain


class _Slow(_Trickle):
    """A source so slow that the pipeline drains between reads."""

    def readinto(self, buffer) -> int:
        time.sleep(0.02)
        return self._data.readinto(buffer)


def test_slow_source_lets_the_pipeline_drain():
    plain = _data(6 * 2**20 + 1)
    out = io.BytesIO()
    encrypt_payload(KEY, _Slow(plain), out)
    back = io.BytesIO()
    decrypt_payload(KEY, _Slow(out.getvalue()), back)
    assert back.getvalue() == plain


class _FailingSink(io.BytesIO):
    def write(self, data):
        if self.tell() >= 2 * 2**20:
            raise OSError("disk full")
        return super().write(data)


def test_write_error_propagates_and_stops_writing():
    sink = _FailingSink()
    with pytest.raises(OSError):
        encrypt_payload(KEY, io.BytesIO(bytes(8 * 2**20)), sink)
    assert sink.tell() < 3 * 2**20


def test_read_error_propagates():
    class Broken(_Trickle):
        calls = 0

        def readinto(self, buffer):
            self.calls += 1
            if self.calls > 3:
                raise OSError("I/O error")
            return self._data.readinto(buffer)

    with pytest.raises(OSError):
        encrypt_payload(KEY, Broken(bytes(8 * 2**20)), io.BytesIO())


def test_source_without_readinto():
    class ReadOnly:
        def __init__(self, data):
            self._b = io.BytesIO(data)

        def read(self, n=-1):
            return self._b.read(n)

    plain = _data(CHUNK_SIZE + 9)
    out = io.BytesIO()
    encrypt_payload(KEY, ReadOnly(plain), out)
    assert _decrypt(out.getvalue()) == plain


# Failures: each asserts the error and exactly the authenticated prefix that was released.


def test_wrong_key():
    _expect_failure(_encrypt(_data(3 * CHUNK_SIZE), key=bytes(16)), b"")


@pytest.mark.parametrize("chunk", [0, 1, 2, 16, 17, 20])
def test_bad_tag_releases_chunks_before_it(chunk):
    plain = _data(20 * CHUNK_SIZE + 100)
    payload = bytearray(_encrypt(plain))
    payload[NONCE_SIZE + chunk * ENC + 5] ^= 1
    _expect_failure(bytes(payload), plain[: chunk * CHUNK_SIZE])


def test_tampered_nonce():
    payload = bytearray(_encrypt(_data(100)))
    payload[0] ^= 0x80
    _expect_failure(bytes(payload), b"")


@pytest.mark.parametrize("length", [0, 1, NONCE_SIZE - 1])
def test_truncated_nonce(length):
    _expect_failure(_encrypt(b"")[:length], b"")


def test_nonce_without_chunks():
    _expect_failure(_encrypt(b"abc")[:NONCE_SIZE], b"")


@pytest.mark.parametrize("cut", [1, TAG_SIZE - 1, TAG_SIZE, TAG_SIZE + 1, 1000])
def test_truncated_final_chunk(cut):
    plain = _data(2 * CHUNK_SIZE + 2000)
    payload = _encrypt(plain)
    _expect_failure(payload[:-cut], plain[: 2 * CHUNK_SIZE])


@pytest.mark.parametrize("chunks", [1, 2, 16, 17])
def test_truncated_at_chunk_boundary(chunks):
    # The last chunk left is a full non-final chunk: authentic, released, then the missing final
    # chunk is reported (as the reference implementation does).
    plain = _data(20 * CHUNK_SIZE + 1)
    payload = _encrypt(plain)
    _expect_failure(payload[: NONCE_SIZE + chunks * ENC], plain[: chunks * CHUNK_SIZE])


def test_truncated_inside_full_chunk():
    plain = _data(3 * CHUNK_SIZE)
    payload = _encrypt(plain)
    _expect_failure(payload[: NONCE_SIZE + ENC + 100], plain[:CHUNK_SIZE])


def test_missing_final_flag_on_short_chunk():
    payload = _spec_chunks(KEY, NONCE, [(b"a" * CHUNK_SIZE, False), (b"b" * 10, False)])
    _expect_failure(payload, b"a" * CHUNK_SIZE)


def test_empty_final_chunk_after_data():
    payload = _spec_chunks(KEY, NONCE, [(b"a" * CHUNK_SIZE, False), (b"", True)])
    _expect_failure(payload, b"a" * CHUNK_SIZE)


def test_final_flag_on_full_chunk_followed_by_data():
    first = b"a" * CHUNK_SIZE
    payload = _spec_chunks(KEY, NONCE, [(first, True), (b"b" * 10, True)])
    _expect_failure(payload, first)
    payload = _spec_chunks(KEY, NONCE, [(first, True), (b"b" * CHUNK_SIZE, False), (b"c", True)])
    _expect_failure(payload, first)


def test_final_flag_on_short_chunk_then_more():
    # Framing makes the short final chunk and what follows one chunk, which cannot authenticate.
    payload = _spec_chunks(KEY, NONCE, [(b"x" * 10, True), (b"y" * 10, True)])
    _expect_failure(payload, b"")


@pytest.mark.parametrize("garbage", [b"\x00", b"G" * 15, b"G" * 16, b"G" * 17, b"G" * (ENC + 3)])
def test_trailing_garbage_after_full_final_chunk(garbage):
    plain = _data(3 * CHUNK_SIZE)
    _expect_failure(_encrypt(plain) + garbage, plain)


@pytest.mark.parametrize("garbage", [b"\x00", b"G" * 40])
def test_trailing_garbage_after_short_final_chunk(garbage):
    plain = _data(CHUNK_SIZE + 10)
    _expect_failure(_encrypt(plain) + garbage, plain[:CHUNK_SIZE])


def test_empty_payload_with_trailing_garbage():
    _expect_failure(_encrypt(b"") + b"x", b"")


def test_chunks_reordered():
    plain = _data(3 * CHUNK_SIZE + 5)
    p = _encrypt(plain)
    body = p[NONCE_SIZE:]
    swapped = p[:NONCE_SIZE] + body[ENC : 2 * ENC] + body[:ENC] + body[2 * ENC :]
    _expect_failure(swapped, b"")


# The public CCTV age test kit: every stream_* vector carries its file key, so the payload layer is
# checked on its own against expected outcome and the hash of what must be released.


def _testkit_vectors():
    if not TESTKIT.is_dir():
        return []
    return sorted(p for p in TESTKIT.iterdir() if p.name.startswith("stream_"))


def _load_vector(path: Path) -> tuple[dict[str, str], bytes, bytes]:
    head, body = path.read_bytes().split(b"\n\n", 1)
    fields = dict(line.split(": ", 1) for line in head.decode().splitlines())
    if fields.get("compressed") == "zlib":
        body = zlib.decompress(body)
    mac = body.index(b"\n--- ")
    payload = body[body.index(b"\n", mac + 1) + 1 :]
    return fields, bytes.fromhex(fields["file key"]), payload


def test_cctv_stream_vectors_are_present():
    # The kit is kept in tests/vectors/age; its absence fails here instead of passing silently.
    assert len(_testkit_vectors()) == 28, f"expected the CCTV age kit's 28 stream_* vectors in {TESTKIT}"


@pytest.mark.parametrize("path", _testkit_vectors(), ids=lambda p: p.name)
def test_cctv_stream_vector(path):
    fields, key, payload = _load_vector(path)
    out = io.BytesIO()
    if fields["expect"] == "success":
        decrypt_payload(key, io.BytesIO(payload), out)
        reader = PayloadReader(key, io.BytesIO(payload))
        assert hashlib.sha256(reader.read_at(0, reader.size)).hexdigest() == fields["payload"]
    else:
        # "header failure" here is a missing or short nonce, which this layer reports alike.
        assert fields["expect"] in ("payload failure", "header failure")
        with pytest.raises(AuthenticationError):
            decrypt_payload(key, io.BytesIO(payload), out)
        with pytest.raises(AuthenticationError):
            reader = PayloadReader(key, io.BytesIO(payload))
            reader.read_at(0, reader.size)
    if "payload" in fields:
        assert hashlib.sha256(out.getvalue()).hexdigest() == fields["payload"]


# Random access.


@pytest.fixture(scope="module")
def sample():
    plain = os.urandom(3 * CHUNK_SIZE + 1234)
    return plain, _encrypt(plain)


@pytest.mark.parametrize(
    "offset,length",
    [
        (0, 10),
        (0, 0),
        (5, 0),
        (CHUNK_SIZE - 3, 6),  # across a chunk boundary
        (CHUNK_SIZE, CHUNK_SIZE),  # exactly one chunk
        (10, 3 * CHUNK_SIZE),  # across several
        (3 * CHUNK_SIZE + 1200, 100),  # runs past the end
        (3 * CHUNK_SIZE + 1234, 5),  # at the end
        (10**9, 5),  # far beyond
        (0, 10**9),
    ],
)
def test_read_at(sample, offset, length):
    plain, payload = sample
    reader = PayloadReader(KEY, io.BytesIO(payload))
    assert reader.read_at(offset, length) == plain[offset : offset + length]


def test_read_at_payload_in_the_middle_of_a_file(sample):
    plain, payload = sample
    src = io.BytesIO(b"header bytes\n" + payload)
    src.seek(13)
    reader = PayloadReader(KEY, src)
    assert reader.size == len(plain)
    assert reader.read_at(CHUNK_SIZE + 7, 9) == plain[CHUNK_SIZE + 7 : CHUNK_SIZE + 16]


def test_read_at_rejects_negative(sample):
    reader = PayloadReader(KEY, io.BytesIO(sample[1]))
    with pytest.raises(ValueError):
        reader.read_at(-1, 3)
    with pytest.raises(ValueError):
        reader.read_at(0, -3)


def test_reader_as_file_object(sample):
    plain, payload = sample
    reader = PayloadReader(KEY, io.BytesIO(payload))
    assert reader.readable() and reader.seekable()
    assert reader.read(5) == plain[:5]
    assert reader.seek(-10, io.SEEK_END) == len(plain) - 10
    assert reader.read() == plain[-10:]
    assert reader.read(3) == b""
    reader.seek(CHUNK_SIZE - 1)
    assert reader.tell() == CHUNK_SIZE - 1
    assert io.BufferedReader(reader).read(4) == plain[CHUNK_SIZE - 1 : CHUNK_SIZE + 3]


def test_reader_empty_payload():
    reader = PayloadReader(KEY, io.BytesIO(_encrypt(b"")))
    assert reader.size == 0
    assert reader.read_at(0, 10) == b""


@pytest.mark.parametrize("where", ["last", "truncated_at_boundary", "garbage", "short_last"])
def test_reader_checks_final_chunk_on_open(sample, where):
    plain, payload = sample
    broken = {
        "last": payload[:-3] + bytes([payload[-3] ^ 1]) + payload[-2:],
        "truncated_at_boundary": payload[: NONCE_SIZE + 3 * ENC],
        "garbage": payload + b"\x00",
        "short_last": payload[:-TAG_SIZE],
    }[where]
    with pytest.raises(AuthenticationError):
        PayloadReader(KEY, io.BytesIO(broken))


def test_reader_checks_each_chunk_it_reads(sample):
    plain, payload = sample
    broken = bytearray(payload)
    broken[NONCE_SIZE + ENC + 100] ^= 1
    reader = PayloadReader(KEY, io.BytesIO(bytes(broken)))
    assert reader.read_at(0, 100) == plain[:100]
    assert reader.read_at(2 * CHUNK_SIZE, 100) == plain[2 * CHUNK_SIZE : 2 * CHUNK_SIZE + 100]
    with pytest.raises(AuthenticationError):
        reader.read_at(CHUNK_SIZE - 1, 2)


def test_reader_rejects_nonce_only_and_short_nonce():
    for data in (_encrypt(b"")[:NONCE_SIZE], b"short"):
        with pytest.raises(AuthenticationError):
            PayloadReader(KEY, io.BytesIO(data))


# Properties.


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.one_of(
        st.integers(0, 4 * CHUNK_SIZE + 10),
        st.sampled_from([k * CHUNK_SIZE + d for k in range(5) for d in (-1, 0, 1)]),
    ),
    ranges=st.lists(st.tuples(st.integers(0, 5 * CHUNK_SIZE), st.integers(0, 2 * CHUNK_SIZE)), max_size=5),
    seed=st.binary(min_size=1, max_size=8),
)
def test_property_round_trip_and_ranges(size, ranges, seed):
    size = max(size, 0)
    plain = (hashlib.sha256(seed).digest() * (size // 32 + 1))[:size]
    payload = _encrypt(plain)
    assert _decrypt(payload) == plain
    reader = PayloadReader(KEY, io.BytesIO(payload))
    assert reader.size == size
    for offset, length in ranges:
        assert reader.read_at(offset, length) == plain[offset : offset + length]


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 3 * CHUNK_SIZE), cut=st.integers(1, 3 * ENC), flip=st.booleans())
def test_property_damage_never_releases_unauthenticated_bytes(size, cut, flip):
    plain = bytes(size)
    payload = bytearray(_encrypt(plain))
    cut = min(cut, len(payload) - 1)
    if flip:
        payload[cut] ^= 1
    else:
        del payload[cut:]
    out = io.BytesIO()
    with pytest.raises(AuthenticationError):
        decrypt_payload(KEY, io.BytesIO(bytes(payload)), out)
    released = out.getvalue()
    assert len(released) % CHUNK_SIZE == 0 and released == plain[: len(released)]
    # Nothing at or after the damaged chunk is released.
    assert len(released) <= max(0, cut - NONCE_SIZE) // ENC * CHUNK_SIZE
