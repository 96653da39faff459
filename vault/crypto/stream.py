"""The age v1 payload: ChaCha20-Poly1305 STREAM in 64 KiB chunks, streamed or read at random offsets.

Layout (C2SP age.md, "Payload")::

    payload     = nonce(16) || chunk_0 || ... || chunk_n
    payload key = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")
    chunk_i     = ChaCha20-Poly1305(payload key, counter_i(11, big endian) || last_i(1), plaintext_i)

Every chunk but the last holds exactly CHUNK_SIZE plaintext bytes; the last has the final flag
0x01, and it is empty only when the whole payload is. Any way a payload can be bad is reported as
one opaque AuthenticationError, and decryption never releases a byte that was not authenticated.
"""

from __future__ import annotations

import io
import os
from typing import IO, TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.crypto.pipeline import Batch, Sink, batches, read_full, run_pipeline, write_all
from vault.errors import AuthenticationError
from vault.i18n import N_

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["CHUNK_SIZE", "NONCE_SIZE", "TAG_SIZE", "encrypt_payload", "decrypt_payload", "authenticate_payload",
           "PayloadReader", "PayloadWriter"]

CHUNK_SIZE = 65536
"""Plaintext bytes in every chunk but the last."""
NONCE_SIZE = 16
"""Bytes of the random nonce that opens the payload (the HKDF salt of the payload key)."""
TAG_SIZE = 16
"""Poly1305 tag bytes that follow each chunk's ciphertext."""
FILE_KEY_SIZE = 16

_ENC_CHUNK = CHUNK_SIZE + TAG_SIZE
_DAMAGED = N_("payload does not authenticate: the file is damaged or was tampered with")
_LAST = b"\x01"
_NOT_LAST = b"\x00"

# Chunks are handed to worker threads in batches of 1 MiB: big enough that the per-batch Python
# overhead vanishes next to the AEAD work (which drops the GIL), small enough to keep memory flat.
_BATCH_CHUNKS = 16


def _payload_aead(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    if len(file_key) != FILE_KEY_SIZE:
        # A programming error, not a bad file: every age file key is 128 bits.
        raise ValueError(f"file key must be {FILE_KEY_SIZE} bytes")
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=nonce, info=b"payload")
    return ChaCha20Poly1305(hkdf.derive(file_key))


def _chunk_nonce(counter: int, last: bool) -> bytes:
    # 2**88 chunks (16 YiB) cannot be reached, so the 11-byte counter is never checked for overflow.
    return counter.to_bytes(11, "big") + (_LAST if last else _NOT_LAST)


def encrypt_payload(file_key: bytes, src: BinaryIO, dst: Sink) -> None:
    """Encrypt all of src as an age payload (a fresh random nonce, then the chunks) onto dst."""
    _encrypt_payload_with_nonce(file_key, os.urandom(NONCE_SIZE), src, dst)


def _encrypt_payload_with_nonce(file_key: bytes, nonce: bytes, src: BinaryIO, dst: Sink) -> None:
    # Test seam for known-answer tests; a fixed nonce MUST NOT be used for real files.
    aead = _payload_aead(file_key, nonce)
    dst.write(nonce)

    def work(batch: Batch) -> int:
        first_counter = batch.index * _BATCH_CHUNKS
        # An empty final batch still yields one (empty) chunk: that is how an empty payload ends.
        count = max(1, -(-batch.size // CHUNK_SIZE))
        for i in range(count):
            start = i * CHUNK_SIZE
            end = min(start + CHUNK_SIZE, batch.size)
            last = batch.last and i == count - 1
            out = i * _ENC_CHUNK
            aead.encrypt_into(
                _chunk_nonce(first_counter + i, last),
                batch.inp[start:end],
                None,
                batch.out[out : out + end - start + TAG_SIZE],
            )
        return batch.size + count * TAG_SIZE

    def emit(batch: Batch, size: int) -> None:
        write_all(dst, batch.out[:size])

    in_size = _BATCH_CHUNKS * CHUNK_SIZE
    run_pipeline(batches(src, in_size, _BATCH_CHUNKS * _ENC_CHUNK), work, emit)


class PayloadWriter:
    """Push-style encryption: ``write()`` plaintext as it arrives, ``close()`` to end the payload.

    For producers that cannot be read from (a request body handed over piece by piece). At most one
    chunk of plaintext is held: a full chunk is sealed only once more data shows it is not the last.
    Sealed chunks are gathered and written to ``dst`` a batch (1 MiB) at a time, so memory stays flat
    whatever the size. ``dst`` is not closed.
    """

    def __init__(self, file_key: bytes, dst: Sink, *, _nonce: bytes | None = None) -> None:
        nonce = os.urandom(NONCE_SIZE) if _nonce is None else _nonce  # _nonce: known-answer test seam
        self._aead = _payload_aead(file_key, nonce)
        self._dst = dst
        self._buf = bytearray()
        self._out = memoryview(bytearray(_BATCH_CHUNKS * _ENC_CHUNK))
        self._used = 0
        self._counter = 0
        self._closed = False
        write_all(dst, memoryview(nonce))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed payload")
        self._buf += data
        # Strictly more than a chunk: the chunk in hand may still turn out to be the final one.
        if len(self._buf) > CHUNK_SIZE:
            view = memoryview(self._buf)
            done = 0
            while len(self._buf) - done > CHUNK_SIZE:
                self._seal(view[done : done + CHUNK_SIZE], last=False)
                done += CHUNK_SIZE
            view.release()
            del self._buf[:done]
        return len(data)

    def close(self) -> None:
        """Seal what is left as the final chunk (empty only for an empty payload) and write it all."""
        if not self._closed:
            self._closed = True
            self._seal(memoryview(self._buf), last=True)
            self._flush()
            self._buf = bytearray()

    def _seal(self, plain: memoryview, *, last: bool) -> None:
        if self._used + len(plain) + TAG_SIZE > len(self._out):
            self._flush()
        end = self._used + len(plain) + TAG_SIZE
        self._aead.encrypt_into(_chunk_nonce(self._counter, last), plain, None, self._out[self._used : end])
        self._used = end
        self._counter += 1

    def _flush(self) -> None:
        write_all(self._dst, self._out[: self._used])
        self._used = 0


def _open_batch(aead: ChaCha20Poly1305, inp: memoryview, out: memoryview, first_counter: int, size: int,
                last: bool) -> int:
    """Decrypt the ``size`` bytes of chunks at ``inp`` (the first numbered ``first_counter``; ``last``:
    they end the payload) into ``out``; return the bytes released, or ~that after a failure."""
    count = -(-size // _ENC_CHUNK)
    if count == 0:
        return ~0  # the nonce and nothing else: no final chunk
    released = 0
    for i in range(count):
        counter = first_counter + i
        start = i * _ENC_CHUNK
        end = min(start + _ENC_CHUNK, size)
        length = end - start - TAG_SIZE
        at_end = last and i == count - 1
        if length < 0 or (at_end and length == 0 and counter > 0):
            return ~released  # truncated chunk, or an empty final chunk after data
        # Only a chunk that ends the file may be final, yet a full one there may have lost its
        # successors, and a full one followed by data may be a final chunk with garbage after
        # it: a full chunk is tried both ways, as the reference implementation does, so that
        # exactly the same authentic prefix is released before the error.
        flags = (at_end, not at_end) if length == CHUNK_SIZE else (at_end,)
        for final in flags:
            chunk_nonce = _chunk_nonce(counter, final)
            try:
                aead.decrypt_into(chunk_nonce, inp[start:end], None, out[released:][:length])
                break
            except InvalidTag:
                continue
        else:
            return ~released  # wrong key, tampered bytes, or a short chunk not flagged final
        released += length
        if final != at_end:
            return ~released  # end of file without a final chunk, or data after the final chunk
    return released


def decrypt_payload(file_key: bytes, src: BinaryIO, dst: Sink) -> None:
    """Decrypt the age payload at src onto dst, writing only authenticated chunks, in order.

    Raises AuthenticationError for any bad payload; dst then holds exactly the plaintext of the
    leading chunks that authenticated (a final chunk included even if data follows it), which is
    what the reference implementation releases. Nothing may follow the final chunk in src.
    """
    nonce = bytearray(NONCE_SIZE)
    if read_full(src, memoryview(nonce)) < NONCE_SIZE:
        raise AuthenticationError(N_("payload is truncated: no nonce"))
    aead = _payload_aead(file_key, bytes(nonce))

    def work(batch: Batch) -> int:
        return _open_batch(aead, batch.inp, batch.out, batch.index * _BATCH_CHUNKS, batch.size, batch.last)

    def emit(batch: Batch, result: int) -> None:
        write_all(dst, batch.out[: result if result >= 0 else ~result])
        if result < 0:
            raise AuthenticationError(_DAMAGED)

    in_size = _BATCH_CHUNKS * _ENC_CHUNK
    run_pipeline(batches(src, in_size, _BATCH_CHUNKS * CHUNK_SIZE), work, emit)


def authenticate_payload(file_key: bytes, payload: memoryview, out: memoryview | None = None) -> int:
    """Raise AuthenticationError unless the payload held whole in ``payload`` (from its nonce) is one
    ``decrypt_payload`` would release in full; with ``out`` (as long as ``payload`` at least) its
    plaintext is kept there, else none is kept. Returns the plaintext's length. It runs on the calling
    thread and reads the chunks in place: for a payload already in memory (``vault check`` of a
    document, a sealed field), the pipeline's threads, copies and buffers cost more than the AEAD."""
    if len(payload) < NONCE_SIZE:
        raise AuthenticationError(N_("payload is truncated: no nonce"))
    aead = _payload_aead(file_key, bytes(payload[:NONCE_SIZE]))
    chunks = payload[NONCE_SIZE:]
    step = _BATCH_CHUNKS * _ENC_CHUNK
    scratch = memoryview(bytearray(min(len(chunks), _BATCH_CHUNKS * CHUNK_SIZE))) if out is None else None
    index = total = 0
    while True:  # the batches ``decrypt_payload`` would read: the same chunk numbers and final flags
        piece = chunks[index * step : (index + 1) * step]
        last = (index + 1) * step >= len(chunks)
        released = _open_batch(aead, piece, out[total:] if out is not None else scratch,  # type: ignore[arg-type]
                               index * _BATCH_CHUNKS, len(piece), last)
        if released < 0:
            raise AuthenticationError(_DAMAGED)
        total += released
        if last:
            return total
        index += 1


class PayloadReader(io.RawIOBase):
    """Random access to the plaintext of an age payload in a seekable file.

    Opening verifies the last chunk as a valid final chunk, which fixes the plaintext size; each
    read then decrypts and verifies only the chunks it covers. It is also a read-only, seekable
    raw file object. src is not owned (closing the reader leaves it open), and the reader moves
    src's position, so it must not be shared between threads.
    """

    def __init__(self, file_key: bytes, src: IO[bytes]) -> None:
        super().__init__()
        self._src = src
        start = src.tell()
        nonce = src.read(NONCE_SIZE)
        if len(nonce) < NONCE_SIZE:
            raise AuthenticationError(N_("payload is truncated: no nonce"))
        self._aead = _payload_aead(file_key, nonce)
        self._chunks_at = start + NONCE_SIZE
        encrypted = src.seek(0, io.SEEK_END) - self._chunks_at
        self._chunk_count = max(1, -(-encrypted // _ENC_CHUNK))
        self._last_length = encrypted - (self._chunk_count - 1) * _ENC_CHUNK
        self._cache: tuple[int, bytes] = (-1, b"")
        # The spec requires this check before any seek relative to the end; doing it up front
        # means a payload truncated at a chunk boundary is never taken for a shorter, valid one.
        last = self._chunk(self._chunk_count - 1)
        self._size = (self._chunk_count - 1) * CHUNK_SIZE + len(last)
        self._pos = 0

    @property
    def size(self) -> int:
        """Plaintext size in bytes."""
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        """Return up to length plaintext bytes from offset (fewer at the end, b"" beyond it)."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        end = min(offset + length, self._size)
        if offset >= end:
            return b""
        first, last = offset // CHUNK_SIZE, (end - 1) // CHUNK_SIZE
        if first == last:
            base = first * CHUNK_SIZE
            return self._chunk(first)[offset - base : end - base]
        parts = [self._chunk(i) for i in range(first, last + 1)]
        parts[0] = parts[0][offset - first * CHUNK_SIZE :]
        parts[-1] = parts[-1][: end - last * CHUNK_SIZE]
        return b"".join(parts)

    def _chunk(self, index: int) -> bytes:
        # One chunk is cached so that small sequential reads decrypt each chunk once.
        if self._cache[0] == index:
            return self._cache[1]
        last = index == self._chunk_count - 1
        length = self._last_length if last else _ENC_CHUNK
        if length < TAG_SIZE or (last and length == TAG_SIZE and index > 0):
            raise AuthenticationError(N_("payload is truncated or its final chunk is empty"))
        self._src.seek(self._chunks_at + index * _ENC_CHUNK)
        data = self._src.read(length)
        if len(data) != length:
            raise AuthenticationError(N_("payload is truncated"))
        try:
            plain = self._aead.decrypt(_chunk_nonce(index, last), data, None)
        except InvalidTag:
            raise AuthenticationError(_DAMAGED) from None
        self._cache = (index, plain)
        return plain

    # The raw file object interface.

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        data = self.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: Buffer) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)
