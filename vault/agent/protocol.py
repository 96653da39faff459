"""The agent's wire format: length-prefixed JSON messages over a Unix stream socket.

Each message is a 4-byte big-endian length and that many bytes of UTF-8 JSON (an object). Requests
carry ``op``; answers carry ``ok`` and either the result or ``error`` (a short code) and ``message``.
Binary values (stanza bodies, file keys, messages, signatures) are base64.

    hello   -> {public, identity_file, pid, version}
    status  -> hello's fields + {idle_timeout, idle_left, lifetime_left}   (seconds)
    unwrap  {stanzas: [{type, args, body}]} -> {file_key: base64 | null}   (null: "not mine")
    sign    {message}  -> {signature}         (only messages in the vault's signature domains)
    stop    -> {} and the agent exits
"""

from __future__ import annotations

import base64
import json
import socket
import struct
from typing import Any, Sequence

from vault.crypto.header import Stanza
from vault.store import jsontext

VERSION = 1
# A header with a hundred hybrid stanzas is ~160 KiB in JSON; anything far larger is not ours.
MAX_MESSAGE = 1 << 20
# The agent signs only what the vault signs: records and audit entries. A process that can reach the
# socket can therefore not use the member's key to sign anything else (an e-mail, a git commit ...).
SIGN_DOMAINS = (b"vault-record-v1\n", b"vault-audit-v2\n")


class ProtocolError(Exception):
    """The other side sent something that is not a message of this protocol (or hung up mid-way)."""


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if buf:
                raise ProtocolError("connection closed mid-message")
            return None
        buf += chunk
    return bytes(buf)


def send(sock: socket.socket, msg: dict[str, Any]) -> None:
    data = json.dumps(msg, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE:
        raise ProtocolError("message too large")
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None when the other side closed the connection between messages."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > MAX_MESSAGE:
        raise ProtocolError("message too large")
    data = _recv_exact(sock, n)
    if data is None:
        raise ProtocolError("connection closed mid-message")
    try:
        msg = jsontext.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("not a JSON object")
    return msg


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ProtocolError("expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ProtocolError("bad base64") from None


def encode_stanzas(stanzas: Sequence[Stanza]) -> list[dict[str, Any]]:
    return [{"type": s.type, "args": list(s.args), "body": b64(s.body)} for s in stanzas]


def decode_stanzas(items: Any) -> list[Stanza]:
    if not isinstance(items, list):
        raise ProtocolError("stanzas: expected a list")
    out = []
    for it in items:
        if not (isinstance(it, dict) and isinstance(it.get("type"), str) and isinstance(it.get("args"), list)
                and all(isinstance(a, str) for a in it["args"])):
            raise ProtocolError("stanzas: malformed stanza")
        out.append(Stanza(it["type"], tuple(it["args"]), unb64(it.get("body"))))
    return out


def in_sign_domain(message: bytes) -> bool:
    return message.startswith(SIGN_DOMAINS)

