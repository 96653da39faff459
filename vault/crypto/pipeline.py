"""The threads under payload streaming: batches read into reused buffers, worked on and written in order."""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, Protocol

if TYPE_CHECKING:
    from concurrent.futures import Future

# Threads doing the AEAD work; the calling thread reads and one more thread writes, so that
# reading, sealing or opening, and writing all overlap.
_WORKERS = max(1, min(4, os.cpu_count() or 1))
# Batch buffers in the ring: one per worker, plus one being written, one being read, and the one
# read ahead to find the end of the input.
_SLOTS = _WORKERS + 3


def read_full(src: BinaryIO, buf: memoryview) -> int:
    """Fill buf from src; return the bytes read, fewer than len(buf) only at end of file."""
    readinto = getattr(src, "readinto", None)
    total = 0
    while total < len(buf):
        if readinto is not None:
            n = readinto(buf[total:])
        else:
            data = src.read(len(buf) - total)
            n = len(data)
            buf[total : total + n] = data
        if not n:  # 0 at end of file; None would mean a non-blocking source with nothing yet
            break
        total += n
    return total


class Sink(Protocol):
    """Where bytes go: a file, or a wrapper around one (hashing, armoring); ``write`` may be partial."""

    def write(self, data: bytes | memoryview, /) -> int | None: ...


def write_all(dst: Sink, data: memoryview) -> None:
    # Raw (unbuffered) files may write less than asked; buffered ones always write it all.
    while len(data):
        n = dst.write(data)
        if n is None or n >= len(data):
            return
        data = data[n:]


class Batch:
    """One slot of the pipeline: an input buffer, an output buffer, and what is in them."""

    __slots__ = ("inp", "out", "index", "size", "last", "written")

    def __init__(self, in_size: int, out_size: int) -> None:
        self.inp = memoryview(bytearray(in_size))
        self.out = memoryview(bytearray(out_size))
        self.index = 0
        self.size = 0
        self.last = False
        self.written: Future | None = None  # set while the slot's output is still to be written


def batches(src: BinaryIO, in_size: int, out_size: int) -> Iterator[Batch]:
    """Read src in in_size batches; the one at end of file is marked last (found by reading ahead).

    Slots are reused round-robin, each only once the batch it held has been written: that wait
    bounds the work in flight, hence memory, and surfaces a failure of an earlier batch.
    """
    slots: list[Batch] = []
    try:
        yield from _batches_in(src, in_size, out_size, slots)
    finally:
        _release(slots, in_size, out_size)


# Buffers are taken from a free list and created only when a slot is first needed: allocating
# and faulting in the pipeline's megabytes cost more than encrypting a small document.
_FREE: dict[tuple[int, int], list[Batch]] = {}
_FREE_LOCK = threading.Lock()


def _take(in_size: int, out_size: int) -> Batch:
    with _FREE_LOCK:
        free = _FREE.get((in_size, out_size))
        if free:
            return free.pop()
    return Batch(in_size, out_size)


def _release(slots: list[Batch], in_size: int, out_size: int) -> None:
    for slot in slots:
        if slot.written is not None and not slot.written.done():
            return  # still in use by a writer after a failure: let it go with the garbage
    with _FREE_LOCK:
        free = _FREE.setdefault((in_size, out_size), [])
        for slot in slots:
            if len(free) < _SLOTS:
                slot.written = None
                free.append(slot)


def _batches_in(src: BinaryIO, in_size: int, out_size: int, slots: list[Batch]) -> Iterator[Batch]:
    def fill(index: int) -> int:
        if index % _SLOTS == len(slots):
            slots.append(_take(in_size, out_size))
        slot = slots[index % _SLOTS]
        if slot.written is not None:
            slot.written.result()
            slot.written = None
        return read_full(src, slot.inp)

    index = 0
    size = fill(0)
    while True:
        batch = slots[index % _SLOTS]
        batch.index, batch.size = index, size
        if size < in_size:
            batch.last, following = True, 0
        else:
            following = fill(index + 1)
            batch.last = following == 0
        yield batch
        if batch.last:
            return
        index, size = index + 1, following


def run_pipeline(
    batches: Iterator[Batch], work: Callable[[Batch], int], emit: Callable[[Batch, int], None]
) -> None:
    """Run work on each batch in a thread pool and emit the results in order on a writer thread.

    After the first failure nothing more is emitted, and the failure is raised here.
    """
    first = next(batches)
    if first.last:
        # Small payloads (most vault blobs) never pay for starting threads.
        emit(first, work(first))
        return
    # Imported here: a command that only meets small payloads never loads the thread pool machinery.
    from concurrent.futures import ThreadPoolExecutor

    failed = threading.Event()

    def write(batch: Batch, result: Future) -> None:
        if failed.is_set():
            return
        try:
            emit(batch, result.result())
        except BaseException:
            failed.set()
            raise

    pool = ThreadPoolExecutor(_WORKERS, "age-stream")
    writer = ThreadPoolExecutor(1, "age-stream-write")
    with pool, writer:
        writes: deque[Future] = deque()
        try:
            for batch in itertools.chain([first], batches):
                batch.written = writer.submit(write, batch, pool.submit(work, batch))
                writes.append(batch.written)
                while writes and writes[0].done():
                    writes.popleft().result()
            while writes:
                writes.popleft().result()
        except BaseException:
            failed.set()  # a read failed, or a write: stop writing what follows
            raise
