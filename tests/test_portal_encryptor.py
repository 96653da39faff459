"""The push-style age encryptor the portal streams uploads into: same bytes as ``encrypt``, flat memory."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.crypto import age, stream

SIZES = [0, 1, stream.CHUNK_SIZE - 1, stream.CHUNK_SIZE, stream.CHUNK_SIZE + 1, 3 * stream.CHUNK_SIZE,
         3 * stream.CHUNK_SIZE + 17]


def _data(size: int) -> bytes:
    return (os.urandom(64) * (size // 64 + 1))[:size]


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("size", SIZES)
def test_payload_writer_matches_the_pull_encryptor_byte_for_byte(size):
    """Known answer: with the same key and nonce, pushing in odd pieces gives the bytes ``encrypt_payload`` gives."""
    key, nonce, data = os.urandom(16), os.urandom(16), _data(size)
    want = io.BytesIO()
    stream._encrypt_payload_with_nonce(key, nonce, io.BytesIO(data), want)
    got = io.BytesIO()
    w = stream.PayloadWriter(key, got, _nonce=nonce)
    for piece in _pieces(data, [7, 65536, 65537, 100000, 131072]):
        w.write(piece)
    w.close()
    assert got.getvalue() == want.getvalue()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 4 * stream.CHUNK_SIZE + 5), st.lists(st.integers(0, 1 << 20), max_size=8))
def test_encryptor_round_trips_however_the_data_is_cut(size, cuts):
    secret = age.generate_identity("x25519")
    data = _data(size)
    out = io.BytesIO()
    with age.Encryptor(out, [age.parse_recipient(age.recipient_of(secret))]) as enc:
        for piece in _pieces(data, cuts):
            enc.write(piece)
    assert age.decrypt_bytes(out.getvalue(), [age.parse_identity(secret)]) == data


def test_the_age_tool_reads_what_the_encryptor_wrote(tmp_path):
    if shutil.which("age") is None:
        pytest.fail("the age command-line tool is not on PATH: run `apt-get install -y age`")
    secret = age.generate_identity("x25519")
    (tmp_path / "key.txt").write_text(secret + "\n")
    data = _data(2 * stream.CHUNK_SIZE + 5)
    with open(tmp_path / "f.age", "wb") as f, age.Encryptor(f, [age.parse_recipient(age.recipient_of(secret))]) as enc:
        for i in range(0, len(data), 1000):
            enc.write(data[i:i + 1000])
    out = subprocess.run(["age", "-d", "-i", str(tmp_path / "key.txt"), str(tmp_path / "f.age")],
                         check=True, capture_output=True).stdout
    assert out == data


class _Counting(io.RawIOBase):
    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.n += len(b)
        return len(b)


def test_the_encryptor_holds_at_most_a_chunk():
    """Memory flat in the size: what is not yet on ``dst`` is at most one chunk in hand plus one batch
    of sealed chunks waiting to be written, however much was pushed."""
    dst = _Counting()
    secret = age.generate_identity("x25519")
    enc = age.Encryptor(dst, [age.parse_recipient(age.recipient_of(secret))])
    head = dst.n  # the header and the payload nonce
    pushed = 0
    for _ in range(500):  # 5 MB, several batches
        enc.write(b"x" * 10_000)
        pushed += 10_000
        assert enc._payload._used <= stream._BATCH_CHUNKS * (stream.CHUNK_SIZE + stream.TAG_SIZE)
        sealed_chunks = (dst.n - head) // (stream.CHUNK_SIZE + stream.TAG_SIZE)
        assert pushed - sealed_chunks * stream.CHUNK_SIZE <= (1 + stream._BATCH_CHUNKS) * stream.CHUNK_SIZE
    enc.close()


def test_a_token_seed_gives_a_working_identity():
    seed = os.urandom(32)
    ident = age.identity_from_seed(seed)
    rcpt = ident.recipient()
    blob = age.encrypt_bytes(b"note", [rcpt])
    assert age.decrypt_bytes(blob, [age.identity_from_seed(seed)]) == b"note"
    assert str(age.identity_from_seed(seed).recipient()) == str(rcpt)
