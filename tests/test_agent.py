"""The identity agent as users run it: real `vault agent` processes, real sockets, real commands."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.office import MARKERS, PASSPHRASE
from tests.test_agent_unit import no_answer

VAULT = [sys.executable, "-m", "vault"]


class Desk:
    """One user's environment: a runtime dir, a home, a tmp dir, and the agents started there."""

    def __init__(self, root: Path, office) -> None:
        self.root, self.office = root, office
        self.run_dir = root / "run"
        self.run_dir.mkdir(mode=0o700)
        for d in ("home", "tmp"):
            (root / d).mkdir()
        self.pids: list[int] = []
        self.cwd: Path | None = None  # where commands run (None: here)

    @property
    def sock(self) -> Path:
        return self.run_dir / "vault" / "agent.sock"

    def env(self, who: str | None = "alice", passphrase: bool = False, **extra: str) -> dict[str, str]:
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root / "home"),
             "TMPDIR": str(self.root / "tmp"), "XDG_RUNTIME_DIR": str(self.run_dir),
             "VAULT_DIR": str(self.office.vault_dir), "PYTHONPATH": str(Path(__file__).parent.parent),
             "VAULT_LANG": "en"}  # the assertions read English
        if who:
            e["VAULT_IDENTITY"] = str(self.office.ident(who))
        if passphrase:
            e["VAULT_PASSPHRASE_FILE"] = str(self.office.root / "pass")
        e.update(extra)
        return e

    def vault(self, *args: str, ok: bool = True, **env) -> subprocess.CompletedProcess:
        res = subprocess.run([*VAULT, *args], env=self.env(**env), capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=60, cwd=self.cwd)
        if ok:
            assert res.returncode == 0, f"vault {' '.join(args)}: {res.stderr}"
        return res

    def start(self, *args: str, who: str = "alice") -> int:
        res = self.vault("agent", "start", *args, who=who, passphrase=True)
        lines = res.stdout.splitlines()
        assert lines[0] == f"VAULT_AGENT_SOCK={self.sock}; export VAULT_AGENT_SOCK;"
        pid = int(lines[1].removeprefix("echo 'Agent pid ").rstrip("';"))  # quoted: it may be in any language
        self.pids.append(pid)
        return pid

    def cleanup(self) -> None:
        for pid in self.pids:  # only the agents this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


pytestmark = pytest.mark.office(dossier={"name": MARKERS["name"]}, doc=MARKERS["content"])


@contextlib.contextmanager
def open_desk(office, kind: type[Desk] = Desk) -> Iterator[Desk]:
    """A desk of ``kind`` in a new directory, its agents killed and the directory removed after."""
    root = Path(tempfile.mkdtemp(prefix="vd-", dir="/tmp"))  # short: socket paths max 107 bytes
    d = kind(root, office)
    try:
        yield d
    finally:
        d.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def desk(office):
    with open_desk(office) as d:
        yield d


def test_start_status_stop(desk):
    pid = desk.start("--idle-timeout", "10m")
    assert alive(pid)
    # the socket: 0600 in a 0700 directory of ours
    st_dir, st_sock = os.lstat(desk.sock.parent), os.lstat(desk.sock)
    assert stat.S_IMODE(st_dir.st_mode) == 0o700 and st_dir.st_uid == os.getuid()
    assert stat.S_ISSOCK(st_sock.st_mode) and stat.S_IMODE(st_sock.st_mode) == 0o600
    st = json.loads(desk.vault("agent", "status", "--json", who=None).stdout)
    assert st["pid"] == pid and st["public"] == desk.office.keys["alice"]
    assert st["identity_file"] == str(desk.office.ident("alice")) and st["idle_timeout"] == 600
    assert 0 < st["idle_left"] <= 600 and st["lifetime_left"] > 600 and st["socket"] == str(desk.sock)
    assert "agent pid" in desk.vault("agent", "status", who=None).stdout
    # no core dumps, detached from the terminal's session
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert [ln for ln in limits.splitlines() if ln.startswith("Max core file size")][0].split()[4:6] == ["0", "0"]
    assert os.getsid(pid) != os.getsid(0) and os.readlink(f"/proc/{pid}/cwd") == "/"
    # a second agent at the same place is refused; the first keeps running
    res = desk.vault("agent", "start", ok=False, passphrase=True)
    assert res.returncode == 1 and res.stderr.startswith("vault: error: an agent is already running")
    assert "vault: hint:" in res.stderr and alive(pid)
    desk.vault("agent", "stop", who=None)
    assert wait_gone(pid) and not desk.sock.exists()
    res = desk.vault("agent", "status", who=None, ok=False)
    assert res.returncode == 1 and res.stderr.startswith("vault: error: no agent is running")
    assert desk.vault("agent", "stop", who=None, ok=False).returncode == 1


def test_eval_in_a_shell_returns_and_exports_the_socket(desk):
    script = f'eval "$({" ".join(VAULT)} agent start)" >/dev/null && echo "$VAULT_AGENT_SOCK"'
    res = subprocess.run(["sh", "-c", script], env=desk.env(passphrase=True), capture_output=True, text=True,
                         timeout=60)  # the daemon must not keep the command substitution's pipe open
    assert res.returncode == 0 and res.stdout.strip() == str(desk.sock)
    st = json.loads(desk.vault("agent", "status", "--json", who=None, VAULT_AGENT_SOCK=str(desk.sock)).stdout)
    desk.pids.append(st["pid"])
    desk.vault("agent", "stop", who=None)
    assert wait_gone(st["pid"])


def test_commands_use_the_agent_with_no_passphrase_available(desk):
    desk.start()
    # no VAULT_PASSPHRASE_FILE, stdin not a terminal: only the agent can make this work
    assert desk.vault("doc", "view", desk.office.doc).stdout == MARKERS["content"]
    assert desk.vault("doc", "view", desk.office.doc, who=None).stdout == MARKERS["content"]  # no identity named
    # the agent signed the audit entries and checkpoint: they verify
    assert desk.vault("audit", "verify", who=None).returncode == 0
    log = (desk.office.vault_dir / "audit" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["member"] for x in log[-2:]] == ["alice", "alice"]
    # a relative path and a symlink to the unlocked file are the same identity
    link = desk.root / "me.key"
    link.symlink_to(desk.office.ident("alice"))
    assert desk.vault("doc", "view", desk.office.doc, VAULT_IDENTITY=str(link)).returncode == 0
    # another identity is not the agent's: its passphrase is needed, and there is none
    res = desk.vault("doc", "view", desk.office.doc, who="bob", ok=False)
    assert res.returncode == 1 and res.stderr.startswith("vault: error: no passphrase available")
    assert desk.vault("doc", "view", desk.office.doc, who="bob", passphrase=True).stdout == MARKERS["content"]


def test_the_key_lives_in_the_agent_only(desk):
    """The agent keeps working with the identity file gone, and no secret reaches any file."""
    from vault.store import identity

    pid = desk.start()
    ident = identity.load_identity(desk.office.ident("alice"), PASSPHRASE)
    moved = desk.root / "away.key"
    desk.office.ident("alice").rename(moved)
    try:
        assert desk.vault("doc", "view", desk.office.doc, who=None).stdout == MARKERS["content"]
        desk.vault("dossier", "list", who=None)
    finally:
        moved.rename(desk.office.ident("alice"))
    secrets = [s.encode() for s in (ident.age_secret, ident.sign_secret, ident.age_secret.lower(),
                                    ident.sign_secret.lower(), PASSPHRASE)]
    pass_file = desk.office.root / "pass"
    for top in (desk.root, desk.office.vault_dir):
        for p in top.rglob("*"):
            if p.is_file() and not p.is_symlink() and p != pass_file:
                data = p.read_bytes()
                assert not any(s in data for s in secrets), p
    # and it holds no file open at all: only its socket, the pipes it was born with and /dev/null
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        assert target.startswith(("socket:", "pipe:", "/dev/null", "anon_inode:")), target


def test_idle_timeout_ends_the_agent(desk):
    pid = desk.start("--idle-timeout", "1s")
    assert wait_gone(pid)
    assert not desk.sock.exists()
    res = desk.vault("doc", "view", desk.office.doc, ok=False)  # back to the passphrase, which is absent
    assert res.stderr.startswith("vault: error: no passphrase available")


def test_bad_durations_are_usage_errors(desk):
    for bad in ("0", "15x"):
        res = desk.vault("agent", "start", "--idle-timeout", bad, ok=False, passphrase=True)
        assert res.returncode == 2 and res.stderr.startswith("vault: error: bad --idle-timeout"), bad
        assert "Traceback" not in res.stderr
    assert not desk.sock.exists()


def test_a_stale_socket_is_handled(desk):
    pid = desk.start()
    os.kill(pid, signal.SIGKILL)  # dies without removing its socket
    assert wait_gone(pid) and desk.sock.exists()
    res = desk.vault("agent", "status", who=None, ok=False)
    assert res.returncode == 1 and "no agent is running" in res.stderr
    # commands fall back to the passphrase
    assert desk.vault("doc", "view", desk.office.doc, passphrase=True).stdout == MARKERS["content"]
    pid2 = desk.start()  # replaces the stale socket
    assert desk.vault("doc", "view", desk.office.doc).stdout == MARKERS["content"]
    os.kill(pid2, signal.SIGTERM)  # a plain kill removes the socket
    assert wait_gone(pid2) and not desk.sock.exists()


def test_a_non_socket_or_a_loose_directory_is_refused(desk):
    d = desk.sock.parent
    d.mkdir(mode=0o700)
    desk.sock.write_text("not a socket")
    res = desk.vault("agent", "start", ok=False, passphrase=True)
    assert res.returncode == 1 and "is not a socket" in res.stderr and desk.sock.read_text() == "not a socket"
    desk.sock.unlink()
    os.chmod(d, 0o755)  # another user could have made it (or could swap the socket in it)
    res = desk.vault("agent", "start", ok=False, passphrase=True)
    assert res.returncode == 1 and "refusing the agent directory" in res.stderr and "vault: hint:" in res.stderr
    assert not desk.sock.exists()


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root to run a client as nobody")
def test_another_user_is_refused_for_real(desk):
    """Even with the socket made reachable by mistake, a process of another uid gets no answer."""
    pid = desk.start()
    shared = Path(tempfile.mkdtemp(prefix="vs-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        os.link(desk.sock, shared / "a.sock")  # a second name for the socket, outside the 0700 directory
        os.chmod(shared / "a.sock", 0o666)
        probe = ("import socket,struct,sys\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\n"
                 f"s.connect({str(shared / 'a.sock')!r})\n"
                 "m=b'{\"op\":\"hello\"}'\n"
                 "try:\n s.sendall(struct.pack('>I',len(m))+m); d=s.recv(100)\nexcept (ConnectionResetError, BrokenPipeError): d=b''\n"
                 "print('answer' if d else 'refused')")
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                              "-c", probe], capture_output=True, text=True, timeout=30, cwd="/")
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "refused"
        # the same probe as ourselves is answered: the refusal was about the uid
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(shared / "a.sock"))
        assert not no_answer(s, {"op": "hello"})
        s.close()
        assert alive(pid)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_desk_commands_with_the_agent_import_only_what_they_use(desk):
    """`doc view` and `dossier list` need neither the plugin host, nor jsonschema, nor the backup code."""
    desk.start()
    not_needed = ("jsonschema", "importlib.metadata", "pluggy", "boto3", "vault.backup", "vault.plugins",
                  "vault.office.export", "smtplib", "concurrent.futures", "logging")
    for args in (["doc", "view", desk.office.doc], ["dossier", "list"]):
        res = subprocess.run([sys.executable, "-X", "importtime", "-m", "vault", *args], env=desk.env(),
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        assert res.returncode == 0, res.stderr[-1000:]
        modules = {ln.split("|")[-1].strip() for ln in res.stderr.splitlines() if ln.startswith("import time:")}
        assert "vault.office.documents" in modules  # the measurement sees the imports
        assert sorted(m for m in modules if m.split(".")[0] in not_needed or m in not_needed
                      or any(m.startswith(n + ".") for n in not_needed)) == [], args


def test_commands_do_without_an_agent_whose_sessions_are_all_held(desk):
    """A process of the same user holding every session of the agent denies it to other commands (not
    promised against, SECURITY.md); they then do without it: with a passphrase they run, without one
    they fail in one line — no hang, no traceback."""
    from vault.agent.server import MAX_SESSIONS

    pid = desk.start("--no-runner")
    held = []
    try:
        for _ in range(MAX_SESSIONS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(desk.sock))
            held.append(s)
        # the agent has taken every one of them (a status answers on none of them: the sessions are ours)
        deadline = time.monotonic() + 10
        while len(os.listdir(f"/proc/{pid}/task")) < MAX_SESSIONS + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir(f"/proc/{pid}/task")) >= MAX_SESSIONS + 1
        started = time.monotonic()
        assert desk.vault("doc", "view", desk.office.doc, passphrase=True).stdout == MARKERS["content"]
        res = desk.vault("doc", "view", desk.office.doc, ok=False)
        assert time.monotonic() - started < 30
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert len(res.stderr.splitlines()) <= 2 and res.stderr.startswith("vault: error: no passphrase available")
        assert alive(pid)
    finally:
        for s in held:
            s.close()
    # the sessions given back (each thread ends on its client's close), the agent serves again
    deadline = time.monotonic() + 10
    while len(os.listdir(f"/proc/{pid}/task")) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert desk.vault("doc", "view", desk.office.doc).stdout == MARKERS["content"]
