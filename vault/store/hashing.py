"""Writing while hashing: a file wrapper that hashes and counts the bytes written, and the hash of a file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from vault.store import open_regular

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor


class HashingWriter:
    """A write-only file that hashes and counts what passes through (the ciphertext hash).

    Large writes are hashed on a helper thread while the write system call runs (SHA-256 releases
    the GIL), and the call returns only when both are done, so the caller may reuse its buffer.
    """

    _PARALLEL = 1 << 16

    def __init__(self, f: Any) -> None:  # a binary file, or a wrapper with write() and flush()
        self.f, self.h, self.size = f, hashlib.sha256(), 0
        self._pool: ThreadPoolExecutor | None = None

    def write(self, b: bytes | bytearray | memoryview) -> int:
        self.size += len(b)
        if len(b) < self._PARALLEL:
            self.h.update(b)
            return self.f.write(b)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # large writes only: small commands skip it

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vault-hash")
        done = self._pool.submit(self.h.update, b)
        try:
            return self.f.write(b)
        finally:
            done.result()

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "HashingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hash_file(path: Path, *, name: str | None = None) -> tuple[str, int]:
    """SHA-256 and size of a vault file (a regular one: ``open_regular``, whose error names it ``name``)."""
    with open_regular(path, name=name) as f:
        return hash_open(f)


def hash_open(f: BinaryIO) -> tuple[str, int]:
    """SHA-256 and size of what the open file ``f`` holds from where it is (callers give it at 0),
    read in 1 MiB pieces into one buffer; ``f`` is left at 0, so the caller reads the same file
    again, not whatever its path names by now."""
    h, n = hashlib.sha256(), 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while k := f.readinto(buf):  # type: ignore[attr-defined]
        h.update(view[:k])
        n += k
    f.seek(0)
    return h.hexdigest(), n
