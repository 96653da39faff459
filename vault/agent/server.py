"""The agent daemon: holds one unlocked identity, unwraps file keys and signs for same-user peers.

It never answers with a private key: the only things that leave it are the public key line, the
identity file's path, 16-byte file keys of headers addressed to it, and signatures of messages in
the vault's signature domains. It exits when idle for ``idle_timeout`` seconds (only unwrapping and
signing count as use), after ``lifetime`` seconds whatever happens, on ``stop`` and on SIGTERM,
SIGINT or SIGHUP, and removes its socket when it goes.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from vault.agent import harden, protocol
from vault.agent.protocol import ProtocolError
from vault.errors import FormatError
from vault.i18n import N_
from vault.store.identity import MemberIdentity

DEFAULT_IDLE = 15 * 60
DEFAULT_LIFETIME = 8 * 3600
MAX_SESSIONS = 64
# A connection that sends nothing for this long is dropped, so abandoned clients free their thread.
SESSION_TIMEOUT = 300.0


def _err(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": code, "message": message}


class Agent:
    """The state and the request handler, apart from any socket (so tests can drive it with a fake clock)."""

    def __init__(self, ident: MemberIdentity, identity_file: str, *, idle_timeout: float = DEFAULT_IDLE,
                 lifetime: float = DEFAULT_LIFETIME, clock: Callable[[], float] = time.monotonic) -> None:
        self._ident = ident
        self._age = ident.age_identity()
        self.public = ident.public.line()
        self.identity_file = identity_file
        self.idle_timeout, self.lifetime = float(idle_timeout), float(lifetime)
        self.clock = clock
        self.started = self.last_used = clock()
        self.stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Agent for {self.public[:40]}...>"  # never the secrets

    def descriptors(self) -> tuple[int, int]:
        """The descriptors the agent itself holds (its wake-up pair), which a daemon must keep open."""
        return self._wake_r.fileno(), self._wake_w.fileno()

    # -- time ------------------------------------------------------------------------------------

    def idle_left(self) -> float:
        return self.idle_timeout - (self.clock() - self.last_used)

    def lifetime_left(self) -> float:
        return self.lifetime - (self.clock() - self.started)

    def time_left(self) -> float:
        return min(self.idle_left(), self.lifetime_left())

    def done(self) -> bool:
        return self.stopping or self.time_left() <= 0

    def stop(self) -> None:
        self.stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- requests --------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {"version": protocol.VERSION, "public": self.public, "identity_file": self.identity_file,
                "pid": os.getpid()}

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Answer one request; never raises for anything a client can send."""
        if self.done():
            return _err("expired", N_("the agent has timed out"))
        op = req.get("op")
        try:
            if op == "hello":
                return {"ok": True, **self.info()}
            if op == "status":
                return {"ok": True, **self.info(), "idle_timeout": self.idle_timeout,
                        "idle_left": max(0.0, self.idle_left()), "lifetime_left": max(0.0, self.lifetime_left())}
            if op == "unwrap":
                return self._unwrap(protocol.decode_stanzas(req.get("stanzas")))
            if op == "sign":
                return self._sign(protocol.unb64(req.get("message")))
            if op == "stop":
                return {"ok": True}  # the session stops the agent once this answer is sent
        except ProtocolError as e:
            return _err("protocol", str(e))
        return _err("unknown", f"unknown request {op!r}")

    def _touch(self) -> None:
        with self._lock:
            self.last_used = self.clock()

    def _unwrap(self, stanzas: list) -> dict[str, Any]:
        self._touch()
        try:
            key = self._age.unwrap(stanzas)
        except FormatError as e:
            return _err("format", str(e))
        except (ValueError, TypeError):
            return _err("format", N_("age header: malformed stanza"))
        return {"ok": True, "file_key": protocol.b64(key) if key is not None else None}

    def _sign(self, message: bytes) -> dict[str, Any]:
        if not protocol.in_sign_domain(message):
            return _err("refused", N_("the agent signs only vault records and audit entries"))
        self._touch()
        return {"ok": True, "signature": protocol.b64(self._ident.sign(message))}


def _session(conn: socket.socket, agent: Agent, slots: threading.BoundedSemaphore) -> None:
    try:
        conn.settimeout(SESSION_TIMEOUT)
        while not agent.done():
            req = protocol.recv(conn)
            if req is None:
                break
            protocol.send(conn, agent.handle(req))
            if req.get("op") == "stop":
                agent.stop()
    except (OSError, ProtocolError):
        pass  # a client that hangs up or talks nonsense loses its connection, nothing else
    finally:
        conn.close()
        slots.release()


_OUT_OF = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def serve(listener: socket.socket, agent: Agent, path: Path | None = None, *, poll: float = 1.0) -> None:
    """Accept same-user connections until the agent is done, then remove ``path`` if it is still ours.

    ``poll`` bounds how late an expiry is noticed; the clock itself is the agent's (a test seam).
    """
    ino = os.stat(path).st_ino if path is not None else None
    slots = threading.BoundedSemaphore(MAX_SESSIONS)
    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    sel.register(agent._wake_r, selectors.EVENT_READ)
    try:
        while not agent.done():
            for key, _ in sel.select(max(0.0, min(poll, agent.time_left()))):
                if key.fileobj is not listener:
                    continue
                try:
                    conn, _addr = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    if e.errno not in _OUT_OF:
                        raise
                    # Out of descriptors (or kernel memory): the connection waits in the queue until
                    # a session ends; the agent goes on (the listener stays readable: not a busy loop).
                    time.sleep(0.05)
                    continue
                conn.setblocking(True)
                # The socket's mode already keeps other users out; the kernel's word on who connected
                # is checked too, so a socket made reachable by mistake still serves no one else.
                if not harden.same_user(conn) or not slots.acquire(blocking=False):
                    conn.close()
                    continue
                try:
                    threading.Thread(target=_session, args=(conn, agent, slots), daemon=True).start()
                except RuntimeError:  # no thread to be had (a task limit): this client only goes without
                    conn.close()
                    slots.release()
    finally:
        sel.close()
        listener.close()
        if path is not None:
            try:
                if os.lstat(path).st_ino == ino:
                    os.unlink(path)  # a newer agent's socket at the same path is left alone
            except FileNotFoundError:
                pass


def run_daemon(listener: socket.socket, agent: Agent, path: Path) -> None:
    """The daemon's main: stop cleanly on the usual signals, serve, and remove the socket."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: agent.stop())
    serve(listener, agent, path)
