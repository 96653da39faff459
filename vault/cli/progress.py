"""Progress bars for long commands: bytes done, rate and time left, on a terminal only.

A bar is drawn on standard error when it is a terminal and the command does not answer in JSON;
in a pipe, a log or under ``--json`` nothing is drawn, so scripts see only the command's output.
Redraws are throttled (a few a second); the last state is drawn when the work ends.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator, TextIO

import click

from vault import i18n
from vault.i18n import _

_REDRAW = 0.2  # seconds between redraws
_WIDTH = 20  # cells of the bar itself


def wanted(stream: TextIO | None = None) -> bool:
    """Whether a bar may be drawn: on a terminal, and not for a command answering in JSON."""
    stream = stream or sys.stderr
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get("vault.json"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Bar:
    """One bar: ``update(n)`` adds ``n`` bytes done; ``close()`` draws the final state and ends the line."""

    def __init__(self, total: int, label: str, stream: TextIO) -> None:
        self.total, self.label, self.stream = max(total, 0), label, stream
        self.done = 0
        self.started = time.monotonic()
        self.drawn = 0.0
        self.lang = i18n.current_language()
        self.width = 0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.drawn >= _REDRAW:
            self.drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        size = lambda n: i18n.format_size(int(n), self.lang)  # noqa: E731
        parts = [self.label]
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = int(frac * _WIDTH)
            parts.append("[" + "#" * filled + "-" * (_WIDTH - filled) + "]")
            parts.append(f"{int(frac * 100):3d}%")
            parts.append(f"{size(self.done)}/{size(self.total)}")
        else:
            parts.append(size(self.done))
        parts.append(_("{rate}/s").format(rate=size(rate)))
        if self.total and rate > 0 and self.done < self.total:
            parts.append(_("{time} left").format(time=_clock((self.total - self.done) / rate)))
        elif self.total and self.done >= self.total:
            parts.append(_("done in {time}").format(time=_clock(elapsed)))
        line = "  ".join(parts)
        pad = max(self.width - len(line), 0)
        self.width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()


@contextlib.contextmanager
def bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A bar for ``total`` bytes on standard error when ``wanted()``; else a step that does nothing."""
    if not wanted():
        yield lambda n: None
        return
    b = Bar(total, label, sys.stderr)
    try:
        yield b.update
    finally:
        b.close()


def factory(stack: contextlib.ExitStack, label: str) -> Callable[[int], Callable[[int], None]]:
    """For library calls that learn their total as they go: ``total -> step``, the bar closed with ``stack``."""
    return lambda total: stack.enter_context(bar(total, label))
