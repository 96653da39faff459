"""What the portal does to every response and every caller: limits, rate limits, security headers, quiet logs."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG = logging.getLogger("vault.portal")

MB = 1_000_000


@dataclass(frozen=True)
class Limits:
    """The portal's limits; the defaults are the ones the README states."""

    max_file: int = 200 * MB
    """Bytes in one file."""
    max_submission: int = 500 * MB
    """Bytes in one submission (one form sent), every file together."""
    max_files: int = 5
    """Files in one submission (the form's rows)."""
    max_concurrent: int = 4
    """Uploads in progress at once, over all invitations; more are refused (503), not queued."""
    rate_requests: int = 30
    """Requests per invitation link within ``rate_window`` seconds (pages and uploads, right or wrong token)."""
    rate_window: int = 600
    idle_seconds: float = 60
    """An upload that sends nothing for this long is cut off, so slow clients cannot hold the slots."""
    header_seconds: float = 10
    """A connection that has not sent a request's headers this long after it opened (or after the
    last answer on it) is closed: silent connections cannot pile up."""
    max_requests: int = 200
    """Requests in progress at once; more get the busy page (503). Connections with no request in
    progress do not count."""
    min_rate_bytes: int = 100_000
    min_rate_seconds: float = 60
    """An upload that sends fewer than ``min_rate_bytes`` in ``min_rate_seconds`` (counted in
    consecutive spans from its start) is cut off: one that sends a byte now and then is never idle
    for long, yet must not hold a slot for days. 100 kB a minute is about 13 kbit/s."""

    @property
    def max_body(self) -> int:
        # The form's own bytes (boundaries, part headers, small fields) on top of the files.
        return self.max_submission + 64 * 1024


SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]

# The segment after an invitation id, wherever the path has one (``//i/…``, ``/./i/…``, ``/x/i/…``),
# and any run of characters long enough to be a token (43 of base64url; an invitation id is 32 hex).
_TOKEN_IN_PATH = re.compile(r"(/i/+[^/]*/+)[^/]*")
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{40,}")


def _escape(text: str) -> str:
    # A client chooses its path: a decoded line feed (``%0A``) or other unprintable character must not
    # start or disguise a log line, so each is written as a Python escape (and so is the backslash).
    return "".join(c if c.isprintable() and c != "\\" else ascii(c)[1:-1] for c in text)


def redact(path: str) -> str:
    """A request path fit for a log: anything that could be a one-time token replaced by an ellipsis,
    unprintable characters escaped."""
    return _TOKEN_IN_PATH.sub("\\1…", _TOKEN_LIKE.sub("…", _escape(path)))


class SecurityHeaders:
    """ASGI middleware: the headers above on every response, one access-log line without the token,
    and at most ``max_requests`` requests in progress (the rest are answered by ``busy``)."""

    def __init__(self, app: ASGIApp, *, busy: ASGIApp | None = None, max_requests: int = 200) -> None:
        self.app, self.busy, self.max_requests = app, busy or app, max_requests
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = self.app if self.in_progress < self.max_requests else self.busy
        self.in_progress += 1
        try:
            await self._call(app, scope, receive, send)
        finally:
            self.in_progress -= 1

    async def _call(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        status = [0]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                names = {n for n, _ in SECURITY_HEADERS}
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = dict(message, headers=headers + SECURITY_HEADERS)
            await send(message)

        try:
            await app(scope, receive, send_with_headers)
        finally:
            LOG.info("%s %s %s %.3fs", _escape(scope["method"]), redact(scope["path"]), status[0] or "-",
                     time.monotonic() - started)


def http_protocol(header_seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, with a deadline for each request's headers: a connection with no
    request in progress ``header_seconds`` after it opened, or after its last answer, is closed.

    uvicorn times a connection out only between requests (its keep-alive timeout starts with the
    first answer), so a connection that never sends its headers would stay open for good.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class HeaderDeadline(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._deadline = self.loop.call_later(header_seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            # A request in progress (its headers complete) is the application's to time out.
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


class RateLimiter:
    """A sliding window per key (an invitation id); bounded in the keys it remembers; thread-safe
    (the portal checks invitations on worker threads)."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 10000, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        with self._lock:
            return self._allow(key)

    def _allow(self, key: str) -> bool:
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) >= self.max_keys:  # still full of live keys: forget the oldest
            del self._hits[next(iter(self._hits))]
