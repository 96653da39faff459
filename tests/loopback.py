"""Real servers for tests, on 127.0.0.1 only: a free port, and an SMTP inbox that keeps what it is sent."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses every connection: bound here and never listening, so no other
    test, in this process or a parallel one, can start a server on it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every delivered message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"
