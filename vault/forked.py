"""Forked worker processes: a function over tasks, the results in the tasks' order.

For work that is Python between system calls and C (``vault check``: parsing, schemas and
signatures between the hashing and the AEAD; ``vault backup run``: reading, hashing and packing
thousands of files): threads take turns at the interpreter lock, processes do not. The workers are
forked, so they inherit what the parent holds in memory (check: the replayed history, the members,
the unlocked identities; backup: the target and its index) and nothing is written anywhere for
them; each task and its result cross a pipe. A worker ignores SIGINT (the parent handles it and
stops them once the tasks in flight are done), never outlives the parent (Linux:
``PR_SET_PDEATHSIG``), and a worker that dies is one error. Only a process with no other thread
forks; elsewhere, and where ``fork`` is missing or refused, ``Forked.start`` says None.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable

from vault.errors import VaultError
from vault.i18n import N_

#: Workers a pool is asked for: one per core, four at most (``start`` never forks more than the
#: cores); the thread pools that stand in for them use as many, two at least.
WORKERS = max(2, min(4, os.cpu_count() or 1))
_INHERIT: Any = None  # what the workers inherit: set for the fork, cleared after


def inherited() -> Any:
    """In a worker: what ``Forked.start`` was given for the workers to inherit."""
    return _INHERIT


def _worker_start(parent: int) -> None:
    """In each worker as it starts: an interrupt is the parent's to handle (it stops the workers),
    and a worker never outlives its parent (Linux: killed with it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before that
        os._exit(1)


class Forked:
    """Worker processes running ``fn`` over tasks; ``next()`` gives the results in the tasks' order."""

    def __init__(self, executor: Any, results: Any, what: str) -> None:
        self.executor, self.results, self.what = executor, results, what

    @classmethod
    def start(cls, fn: Callable[[Any], Any], tasks: Iterable[Any], inherit: Any, *, workers: int,
              chunk: int, what: str) -> Forked | None:
        """Up to ``workers`` workers (one per core at most) running ``fn`` (a module-level function)
        over ``tasks``, ``chunk`` at a time, with ``inherit`` for ``inherited()``; None where it
        cannot be: one core, no ``fork``, other threads running, or a fork refused. ``what`` names
        the command in the error of a worker that died."""
        import threading

        workers = min(workers, os.cpu_count() or 1)
        if workers < 2 or threading.active_count() > 1:
            return None
        import multiprocessing

        if "fork" not in multiprocessing.get_all_start_methods():
            return None
        from concurrent.futures import ProcessPoolExecutor

        global _INHERIT
        _INHERIT = inherit
        before = set(multiprocessing.active_children())
        ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_worker_start, initargs=(os.getpid(),))
        from concurrent.futures.process import BrokenProcessPool

        try:
            # (with fork, every worker is started by the first submit, before the executor's thread)
            results = ex.map(fn, tasks, chunksize=chunk)
        except (OSError, BrokenProcessPool):  # no process to be had (a process limit, memory), or one died at once
            for p in set(multiprocessing.active_children()) - before:  # (any started before the refusal)
                p.kill()
                p.join()
            ex.shutdown(wait=True, cancel_futures=True)
            return None
        finally:
            _INHERIT = None
        return cls(ex, results, what)

    def next(self) -> Any:
        """The next task's result (a worker's exception is raised here, as the task would have)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return next(self.results)
        except BrokenProcessPool:
            raise VaultError(N_("{command}: a worker process stopped before it finished (out of memory?)"),
                             hint=N_("run the command again"), command=self.what) from None

    def shutdown(self) -> None:
        """Stop the workers once the tasks in flight are done (the rest are dropped)."""
        self.executor.shutdown(wait=True, cancel_futures=True)
