"""The s3 target's requests paced: each try waits on the server within a bound in all, not only per read."""

from __future__ import annotations

import functools
import io
import threading
import time
from typing import Any, Callable

#: The least average rate, in bytes a second, at which a server must carry an object: once
#: connected (which waits the timeout for each address tried, and the TLS handshake the timeout
#: again), a try of a request may wait on the server — to send, for its answer — the timeout in
#: all, plus a second for each ``S3_MIN_RATE`` bytes of the object it puts, or of the object's body
#: it has received so far. So a whole object of n bytes comes or goes within the timeout plus
#: n / 64 KiB/s (a length the server declares earns nothing until its bytes come), and a server
#: that sends or reads a byte every few seconds, its socket never idle for the timeout, is given up
#: after it. A listing or a small request carries no object: its answer, head and body, comes
#: whole within the timeout.
S3_MIN_RATE = 64 << 10


pace = threading.local()
"""Per thread: ``plan`` — the timeout of the request it is about to make and whether that request's
answer carries an object (``S3Target._call`` sets it, each connection reads it as a request starts);
``over`` — the seconds a request waited before it was given up over its bound, else None."""


class _Clock:
    """How long one request of a connection may still wait on the server (``S3_MIN_RATE``); the
    connection starts it for each request. Time is counted while a socket call waits, so what a
    reader does between reads costs the server nothing."""

    def __init__(self, idle: float | None) -> None:
        self.idle = idle  # the socket timeout botocore asks for: a wait for the next bytes
        self.start(None, 0, False)

    def start(self, timeout: float | None, sending: int, carries: bool) -> None:
        self.allowed = None if timeout is None else timeout + sending / S3_MIN_RATE
        self.carries, self.received, self.waited = carries, 0, 0.0

    def wait(self, sock: Any, op: Callable[[Any], int], data: Any) -> int:
        """``op(data)`` on the socket ``sock`` (a send or a read), given up as a timeout past the
        request's bound; its byte count."""
        if self.allowed is None:
            sock.settimeout(self.idle)
            return op(data)
        left = self.allowed + (self.received / S3_MIN_RATE if self.carries else 0) - self.waited
        if left <= 0:
            pace.over = max(1, round(self.waited))
            raise TimeoutError("timed out")
        sock.settimeout(left if self.idle is None else min(self.idle, left))
        start = time.monotonic()
        try:
            n = op(data)
        except TimeoutError:
            if self.idle is None or left < self.idle:
                pace.over = max(1, round(self.waited + time.monotonic() - start))
            raise
        finally:
            self.waited += time.monotonic() - start
        if self.carries and n:
            self.received += n
        return n


class _PacedReader(io.RawIOBase):
    """What a paced socket's ``makefile`` gives: its reads waited for by the clock."""

    def __init__(self, sock: Any, clock: _Clock) -> None:
        self._sock, self._clock, self._raw = sock, clock, sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any, /) -> int:
        return self._clock.wait(self._sock, self._raw.readinto, buffer)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class _PacedSocket:
    """A connection's socket, its sends and reads under the connection's clock; the rest as is."""

    def __init__(self, sock: Any, clock: _Clock) -> None:
        self._sock, self._clock = sock, clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._clock.idle = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._clock.idle

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self._clock.wait(self._sock, self._sock.send, view[: 1 << 16]):]

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        if mode != "rb":
            raise ValueError(f"a paced socket reads bytes, not {mode!r}")
        raw = _PacedReader(self._sock, self._clock)
        return raw if buffering == 0 else io.BufferedReader(raw, buffering if buffering and buffering > 0 else io.DEFAULT_BUFFER_SIZE)


def _sending(body: Any, headers: Any) -> int:
    """The bytes a request puts: its Content-Length (the target's own), else its body's length."""
    for k, v in (headers or {}).items():
        if str(k).lower() == "content-length":
            try:
                return max(0, int(v))
            except ValueError:
                return 0
    return len(body) if isinstance(body, (bytes, bytearray, memoryview)) else 0


@functools.cache
def paced_pools() -> dict[str, Any]:
    """botocore's connection pools for http and https, their connections' sockets paced by a clock
    that each request starts from ``pace.plan``."""
    from botocore.awsrequest import AWSHTTPConnection, AWSHTTPConnectionPool, AWSHTTPSConnection, AWSHTTPSConnectionPool

    def paced(base: Any) -> Any:
        class Paced(base):
            sock: Any

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self._clock = _Clock(None)
                super().__init__(*args, **kwargs)

            def connect(self) -> None:
                super().connect()
                self._clock.idle = self.sock.gettimeout()
                self.sock = _PacedSocket(self.sock, self._clock)

            def request(self, method: str, url: str, body: Any = None, headers: Any = None, *args: Any, **kwargs: Any) -> Any:
                timeout, carries = getattr(pace, "plan", None) or (None, False)
                self._clock.start(timeout, _sending(body, headers), carries)
                pace.over = None
                return super().request(method, url, body, headers, *args, **kwargs)

        return Paced

    http, https = paced(AWSHTTPConnection), paced(AWSHTTPSConnection)
    return {"http": type("PacedPool", (AWSHTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PacedHTTPSPool", (AWSHTTPSConnectionPool,), {"ConnectionCls": https})}
