"""Talking to a running agent, and an agent-backed member identity for the Actor.

``AgentIdentity`` has the interface of ``vault.store.identity.MemberKey``: ``public``, ``age_identity()``
(whose ``unwrap`` sends the header's stanzas to the agent) and ``sign``. Each signature is verified
against the public key before it is used, so a wrong or impostor agent cannot make the vault write a
record that does not verify.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any, Sequence

from vault.agent import harden, paths, protocol
from vault.agent.protocol import ProtocolError
from vault.crypto import sign
from vault.crypto.header import Stanza
from vault.errors import AuthenticationError, FormatError, VaultError
from vault.i18n import Message, N_
from vault.store.identity import PUBLIC_PREFIX, PublicKey

TIMEOUT = 30.0


class AgentError(VaultError):
    """The agent could not be reached, refused a request or answered nonsense."""

    code = "agent"
    hint = N_("check 'vault agent status'; start one with: eval \"$(vault agent start)\"")


class AgentClient:
    """One connection to an agent, kept open for the whole command: one per process (a process forked
    while it is open, as ``vault check --read-data``'s workers are, connects anew on its first request
    and never writes to its parent's connection)."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._sock, self.path = sock, path
        self._pid = os.getpid()
        self._lock = threading.Lock()  # one request and its answer at a time, whichever thread asks

    @classmethod
    def connect(cls, path: Path) -> "AgentClient":
        """Connect to the agent at ``path``; ConnectionRefusedError/FileNotFoundError when none listens."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(TIMEOUT)
            s.connect(os.fspath(path))
            # The agent checks us; we check it: a socket set up by another user (a VAULT_AGENT_SOCK
            # pointing somewhere shared) must not receive our headers or messages.
            if not harden.same_user(s):
                raise AgentError(N_("the agent socket {path} belongs to another user"), hint=N_("unset VAULT_AGENT_SOCK"), path=path)
        except BaseException:
            s.close()
            raise
        return cls(s, path)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        try:
            if self._pid != os.getpid():  # forked: the parent's connection is not ours to talk on
                fresh = AgentClient.connect(self.path)
                self._sock, self._pid, self._lock = fresh._sock, fresh._pid, fresh._lock
            with self._lock:
                protocol.send(self._sock, {"op": op, **fields})
                ans = protocol.recv(self._sock)
        except (OSError, ProtocolError) as e:
            raise AgentError(N_("lost the connection to the agent ({e})"), e=e) from None
        if ans is None:
            raise AgentError(N_("the agent closed the connection (timed out or stopped?)"))
        if not ans.get("ok"):
            if ans.get("error") == "format":
                # The agent speaks English on the wire; a message the catalogue has is shown translated.
                raise FormatError(Message(str(ans.get("message", "age header: malformed stanza"))))
            raise AgentError(N_("the agent refused: {reason}"), reason=Message(str(ans.get('message', ans.get('error')))))
        return ans

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "AgentClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(path: Path | None = None) -> AgentClient | None:
    """A connection to the agent at ``path`` (default: ``$VAULT_AGENT_SOCK`` or the per-user place),
    or None when no agent is listening there (no file, or a stale socket left by a dead agent).

    At the per-user place (no ``path``, no ``$VAULT_AGENT_SOCK``) a socket or directory that is not the
    user's own, or a directory open to others, is no agent either: another user may have made it in a
    shared $TMPDIR, and the command goes on without an agent. A socket the member named is refused
    with an error saying why."""
    default = path is None and not paths.named()
    path = path or paths.socket_path()
    if len(os.fsencode(path)) > paths.MAX_PATH:
        return None  # no agent can listen there: `vault agent start` refuses such a path
    if default and not paths.private_place(path):
        return None
    try:
        return AgentClient.connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        return None
    except AgentError:
        if default:
            return None  # (a listener of another user behind a socket file of ours)
        raise
    except OSError as e:
        raise AgentError(N_("cannot reach the agent at {path}: {value}"), path=path, value=e.strerror or e) from None


class _AgentAgeIdentity:
    """An age Identity whose unwrap is done by the agent."""

    def __init__(self, client: AgentClient) -> None:
        self._client = client

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        ans = self._client.call("unwrap", stanzas=protocol.encode_stanzas(stanzas))
        key = ans.get("file_key")
        if key is None:
            return None
        try:
            return protocol.unb64(key)
        except ProtocolError:
            raise AgentError(N_("the agent answered nonsense")) from None


def _public_key(line: object) -> PublicKey:
    """The agent's key line, split but not fully parsed.

    The line only ever serves to be compared with members' key lines (``Vault.act_as``), which were
    parsed when their records were verified; decoding a 2 KB hybrid recipient again would cost a
    small command a tenth of its time. The signing key, which verifies every signature the agent
    returns, is checked here.
    """
    parts = line[len(PUBLIC_PREFIX):].split(":") if isinstance(line, str) and line.startswith(PUBLIC_PREFIX) else []
    try:
        if len(parts) != 2:
            raise FormatError(N_("not a member key line"))
        sign.check_public_key(parts[1])
    except FormatError:
        raise AgentError(N_("the agent's public key is not a member key line")) from None
    return PublicKey(parts[0], parts[1])


class AgentIdentity:
    """A member identity held by an agent: what ``Vault.act_as`` takes, without the secrets."""

    def __init__(self, client: AgentClient, info: dict[str, Any]) -> None:
        self._client = client
        self._public = _public_key(info.get("public"))
        self.identity_file = str(info.get("identity_file", ""))

    def __repr__(self) -> str:
        return f"<AgentIdentity {self.identity_file}>"

    @property
    def public(self) -> PublicKey:
        return self._public

    def age_identity(self) -> _AgentAgeIdentity:
        return _AgentAgeIdentity(self._client)

    def sign(self, message: bytes) -> bytes:
        sig = protocol.unb64(self._client.call("sign", message=protocol.b64(message)).get("signature"))
        try:
            sign.verify(self._public.signing, message, sig)
        except AuthenticationError:
            raise AgentError(N_("the agent's signature does not verify with its public key")) from None
        return sig


def identity_for(identity_file: str | None, path: Path | None = None) -> AgentIdentity | None:
    """The agent's identity when an agent is running and holds ``identity_file`` (any identity when None).

    "Holds" is decided by the file itself (``os.path.samefile``), so a relative path, a symlink or a
    hard link to the unlocked file all match; anything else falls back to the passphrase.
    """
    client = connect(path)
    if client is None:
        return None
    try:
        try:
            info = client.call("hello")
        except AgentError:
            client.close()  # it is going away (timed out, stopping): the passphrase will do
            return None
        held = str(info.get("identity_file", ""))
        if identity_file is not None:
            try:
                same = os.path.samefile(identity_file, held)
            except OSError:
                same = False
            if not same:
                client.close()
                return None
        return AgentIdentity(client, info)
    except BaseException:
        client.close()
        raise
