"""The identity agent in-process: its requests, its clock, its socket loop and its client (real sockets)."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from vault.archive import audit
from vault.store import identity, records
from vault.agent import client, harden, paths, protocol, server
from vault.crypto import age, sign
from vault.errors import InputError, NoIdentityMatchError


class Clock:
    """A clock the test moves by hand (the agent's time seam)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def ident():
    return identity.MemberIdentity.generate()


@pytest.fixture
def short_dir():
    # Unix socket paths are limited to 107 bytes: pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="va-", dir="/tmp"))
    yield d
    import shutil

    shutil.rmtree(d, ignore_errors=True)


def secrets_of(ident) -> list[str]:
    return [ident.age_secret, ident.sign_secret, ident.sign_secret.lower(), ident.age_secret.lower()]


def test_hello_says_who_without_secrets(ident):
    agent = server.Agent(ident, "/home/x/id.key")
    ans = agent.handle({"op": "hello"})
    assert ans["ok"] and ans["public"] == ident.public.line() and ans["identity_file"] == "/home/x/id.key"
    st = agent.handle({"op": "status"})
    text = repr(ans) + repr(st) + repr(agent)
    assert not any(s in text for s in secrets_of(ident))


def test_unwrap_returns_the_file_key_or_not_mine(ident):
    agent = server.Agent(ident, "id")
    blob = age.encrypt_bytes(b"hello", [age.parse_recipient(ident.public.recipient)])
    hdr = age.read_header(io.BytesIO(blob))
    ans = agent.handle({"op": "unwrap", "stanzas": protocol.encode_stanzas(hdr.stanzas)})
    key = base64.b64decode(ans["file_key"])
    assert len(key) == 16
    hdr.verify_mac(key)  # the right key: the header's MAC checks with it
    other = identity.MemberIdentity.generate()
    blob2 = age.encrypt_bytes(b"hello", [age.parse_recipient(other.public.recipient)])
    hdr2 = age.read_header(io.BytesIO(blob2))
    assert agent.handle({"op": "unwrap", "stanzas": protocol.encode_stanzas(hdr2.stanzas)}) == {"ok": True, "file_key": None}


def test_malformed_requests_get_an_answer_not_a_crash(ident):
    agent = server.Agent(ident, "id")
    bad_stanza = [{"type": "mlkem768x25519", "args": ["AAAA"], "body": ""}]
    assert agent.handle({"op": "unwrap", "stanzas": bad_stanza})["error"] == "format"
    assert agent.handle({"op": "unwrap", "stanzas": "nope"})["error"] == "protocol"
    assert agent.handle({"op": "unwrap", "stanzas": [{"type": "x", "args": [1]}]})["error"] == "protocol"
    assert agent.handle({"op": "sign", "message": "***"})["error"] == "protocol"
    for op in ("export", "secret", "dump", None):
        ans = agent.handle({"op": op})
        assert ans["error"] == "unknown" and not any(s in repr(ans) for s in secrets_of(ident))


def test_signs_only_in_the_vault_signature_domains(ident):
    agent = server.Agent(ident, "id")
    for msg in (b"hello", b"ssh-sig", b"vault-record-v2\n{}", b""):
        ans = agent.handle({"op": "sign", "message": protocol.b64(msg)})
        assert ans["error"] == "refused", msg
    for domain in (records.SIGNATURE_DOMAIN, audit.DOMAIN):
        msg = domain + b'{"a":1}'
        sig = base64.b64decode(agent.handle({"op": "sign", "message": protocol.b64(msg)})["signature"])
        sign.verify(ident.public.signing, msg, sig)
    # the domains the agent allows are exactly the ones the vault signs with
    assert set(protocol.SIGN_DOMAINS) == {records.SIGNATURE_DOMAIN, audit.DOMAIN}


def test_idle_timeout_and_lifetime_follow_the_clock(ident):
    clock = Clock()
    agent = server.Agent(ident, "id", idle_timeout=900, lifetime=3600, clock=clock)
    clock.t += 899
    assert not agent.done()
    agent.handle({"op": "status"})  # asking about the agent is not using it
    clock.t += 2
    assert agent.done() and agent.handle({"op": "hello"})["error"] == "expired"

    agent = server.Agent(ident, "id", idle_timeout=900, lifetime=3600, clock=clock)
    msg = protocol.b64(records.SIGNATURE_DOMAIN + b"{}")
    for _ in range(4):  # used every 800 s: the idle timeout never fires ...
        clock.t += 800
        assert agent.handle({"op": "sign", "message": msg})["ok"]
    assert agent.lifetime_left() == pytest.approx(400)
    clock.t += 401  # ... but the hard limit does
    assert agent.done() and agent.handle({"op": "sign", "message": msg})["error"] == "expired"


def no_answer(s: socket.socket, req: dict) -> bool:
    """True when the other side closes (or resets) the connection without answering ``req``."""
    try:
        protocol.send(s, req)
        return protocol.recv(s) is None
    except (ConnectionResetError, BrokenPipeError):
        return True


def _serve_in_thread(agent, path: Path, poll: float = 0.02) -> threading.Thread:
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(str(path))
    lst.listen(4)
    t = threading.Thread(target=server.serve, args=(lst, agent, path), kwargs={"poll": poll}, daemon=True)
    t.start()
    return t


def test_serve_loop_exits_and_removes_its_socket_when_idle(ident, short_dir):
    clock = Clock()
    agent = server.Agent(ident, "id", idle_timeout=900, clock=clock)
    path = short_dir / "a.sock"
    t = _serve_in_thread(agent, path)
    with client.AgentClient.connect(path) as c:
        assert c.call("hello")["public"] == ident.public.line()
    clock.t += 901  # fifteen minutes pass without a sleep
    t.join(5)
    assert not t.is_alive() and not path.exists()
    assert client.connect(path) is None


def test_serve_loop_refuses_another_uid(ident, short_dir, monkeypatch):
    agent = server.Agent(ident, "id")
    path = short_dir / "a.sock"
    t = _serve_in_thread(agent, path)
    # The agent compares the kernel's peer uid with its own; make "its own" differ from ours.
    real = os.getuid()
    monkeypatch.setattr(harden.os, "getuid", lambda: real + 1)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(path))
    assert no_answer(s, {"op": "hello"})
    s.close()
    monkeypatch.setattr(harden.os, "getuid", lambda: real)
    with client.AgentClient.connect(path) as c:
        c.call("stop")
    t.join(5)
    assert not t.is_alive() and not path.exists()


def test_peer_credentials_come_from_the_kernel():
    a, b = socket.socketpair(socket.AF_UNIX)
    assert harden.peer_uid(a) == os.getuid() and harden.same_user(a)
    a.close(), b.close()


def test_client_refuses_an_agent_of_another_user(ident, short_dir, monkeypatch):
    agent = server.Agent(ident, "id")
    path = short_dir / "a.sock"
    t = _serve_in_thread(agent, path)
    real = os.getuid()
    # Seen from the client, the socket's owner is someone else: it must not send it anything.
    monkeypatch.setattr(harden.os, "getuid", lambda: real + 1)
    with pytest.raises(client.AgentError, match="another user"):
        client.AgentClient.connect(path)
    monkeypatch.setattr(harden.os, "getuid", lambda: real)
    agent.stop()
    t.join(5)


def test_agent_identity_decrypts_and_signs_like_the_identity(ident, short_dir):
    agent = server.Agent(ident, str(short_dir / "id.key"))
    (short_dir / "id.key").write_text("x")
    path = short_dir / "a.sock"
    t = _serve_in_thread(agent, path)
    held = client.identity_for(str(short_dir / "id.key"), path)
    assert held is not None and held.public == ident.public
    blob = age.encrypt_bytes(b"secret payload", [age.parse_recipient(ident.public.recipient)])
    assert age.decrypt_bytes(blob, [held.age_identity()]) == b"secret payload"
    other = identity.MemberIdentity.generate()
    with pytest.raises(NoIdentityMatchError):
        age.decrypt_bytes(age.encrypt_bytes(b"x", [age.parse_recipient(other.public.recipient)]), [held.age_identity()])
    rec = records.sign_record({"format": 1, "n": 1}, signer="alice", key=held)
    records.verify_record(rec, ident.public.signing, what="rec")
    assert rec == records.sign_record({"format": 1, "n": 1}, signer="alice", key=ident)  # Ed25519 is deterministic
    # another identity file: not held, the caller falls back to the passphrase
    (short_dir / "other.key").write_text("y")
    assert client.identity_for(str(short_dir / "other.key"), path) is None
    # a symlink to the held file is the held file
    (short_dir / "link.key").symlink_to(short_dir / "id.key")
    assert client.identity_for(str(short_dir / "link.key"), path) is not None
    agent.stop()
    t.join(5)


def test_a_signature_that_does_not_verify_is_refused(ident, short_dir):
    agent = server.Agent(ident, "id")
    path = short_dir / "a.sock"
    t = _serve_in_thread(agent, path)
    c = client.AgentClient.connect(path)
    info = c.call("hello")
    info["public"] = identity.MemberIdentity.generate().public.line()  # an agent lying about its key
    impostor = client.AgentIdentity(c, info)
    with pytest.raises(client.AgentError, match="does not verify"):
        records.sign_record({"format": 1}, signer="alice", key=impostor)
    for bad in ("nonsense", "vault-member-1:age1x", "vault-member-1:age1x:vaultsig1bad", None):
        with pytest.raises(client.AgentError, match="not a member key line"):
            client.AgentIdentity(c, {**info, "public": bad})
    c.close()
    agent.stop()
    t.join(5)


def test_no_agent_and_stale_socket_mean_none(short_dir):
    assert client.connect(short_dir / "none.sock") is None
    assert client.connect(short_dir / ("x" * 200) / "a.sock") is None  # longer than a socket path can be
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(short_dir / "stale.sock"))
    s.close()  # the file stays, nobody listens
    assert client.connect(short_dir / "stale.sock") is None
    assert client.identity_for(None, short_dir / "stale.sock") is None


def test_default_place(monkeypatch, short_dir):
    monkeypatch.delenv(paths.ENV, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    assert paths.socket_path() == short_dir / "vault" / "agent.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("TMPDIR", str(short_dir))
    assert paths.socket_path() == short_dir / f"vault-{os.getuid()}" / "agent.sock"
    monkeypatch.setenv(paths.ENV, "/elsewhere/a.sock")
    assert paths.socket_path() == Path("/elsewhere/a.sock")


def test_secure_dir_refuses_what_others_could_touch(short_dir):
    d = short_dir / "ok"
    paths.secure_dir(d)
    assert (os.stat(d).st_mode & 0o777) == 0o700
    paths.secure_dir(d)  # existing and right: accepted
    loose = short_dir / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    with pytest.raises(InputError, match="refusing"):
        paths.secure_dir(loose)
    (short_dir / "link").symlink_to(d)
    with pytest.raises(InputError, match="refusing"):
        paths.secure_dir(short_dir / "link")
    with pytest.raises(InputError, match="too long"):
        paths.check_length(short_dir / ("x" * 120))


def test_hardening_turns_off_core_dumps_and_dumpable():
    code = ("import resource; from vault.agent import harden; harden.no_core_dumps(); "
            "print(resource.getrlimit(resource.RLIMIT_CORE), harden.dumpable())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(0, 0) False"


def test_protocol_rejects_oversized_and_garbled_messages():
    a, b = socket.socketpair(socket.AF_UNIX)
    a.sendall((protocol.MAX_MESSAGE + 1).to_bytes(4, "big"))
    with pytest.raises(protocol.ProtocolError):
        protocol.recv(b)
    a.sendall((3).to_bytes(4, "big") + b"[1]")
    with pytest.raises(protocol.ProtocolError):
        protocol.recv(b)
    a.close()
    b.close()


def test_one_connection_serves_many_threads(ident, short_dir):
    from concurrent.futures import ThreadPoolExecutor

    agent = server.Agent(ident, "id")
    path = short_dir / "a.sock"
    t = _serve_in_thread(agent, path)
    held = client.identity_for(None, path)
    blobs = [age.encrypt_bytes(bytes([i]) * 100, [age.parse_recipient(ident.public.recipient)]) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda b: age.decrypt_bytes(b, [held.age_identity()]), blobs * 4))
        sigs = list(pool.map(lambda i: held.sign(records.SIGNATURE_DOMAIN + bytes([i])), range(32)))
    assert outs == [bytes([i]) * 100 for i in range(8)] * 4 and len(set(sigs)) == 32
    agent.stop()
    t.join(5)
