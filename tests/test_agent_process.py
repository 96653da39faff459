"""The agent daemon as a process among others: what it inherits from the command that started it, where
commands look for it, and how it copes when the system refuses it something. Real `vault agent`
processes, real sockets."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.office import MARKERS
from tests.test_agent import VAULT, alive, open_desk
from tests.test_agent_unit import no_answer
from tests.test_runner import Installed
from vault.agent import server

pytestmark = pytest.mark.office(dossier={"name": MARKERS["name"]}, doc=MARKERS["content"])


@pytest.fixture
def desk(office):
    with open_desk(office, Installed) as d:
        yield d


@pytest.mark.parametrize("runner", [True, False])
def test_the_agent_keeps_no_descriptor_of_the_command_that_started_it(desk, runner):
    """A script that holds a lock on a descriptor while it starts the agent has the lock back when it lets go,
    not hours later when the agent ends; the agent (and its runner) keep serving."""
    lock_file = desk.root / "script.lock"
    held = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        res = subprocess.run([*VAULT, "agent", "start", "--json", *([] if runner else ["--no-runner"])],
                             env=desk.env(passphrase=True), capture_output=True, text=True, pass_fds=(held,),
                             stdin=subprocess.DEVNULL, cwd=desk.cwd, timeout=60)
    finally:
        os.close(held)  # the script lets go of its lock
    assert res.returncode == 0, res.stderr
    pid = json.loads(res.stdout)["pid"]
    desk.pids.append(pid)
    again = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the agent holds it
    finally:
        os.close(again)
    targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert str(lock_file) not in targets
    assert desk.vault("doc", "view", desk.office.doc).stdout == MARKERS["content"]
    if runner:  # its lifeline is one of the descriptors the agent keeps
        assert desk.runner()["current"]
    assert alive(pid)


NOBODY = 65534


def _as_nobody_listening(path: Path) -> subprocess.Popen:
    """A process of another user (nobody) listening at ``path``; it says "up" once it does."""
    code = ("import socket,os,sys\ns=socket.socket(socket.AF_UNIX)\n"
            f"s.bind({str(path)!r})\nos.chmod({str(path)!r}, 0o666)\ns.listen(8)\nprint('up', flush=True)\n"
            "sys.stdin.read()")
    p = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/python3",
                          "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/")
    assert p.stdout is not None and p.stdout.readline().strip() == "up"
    return p


@pytest.mark.skipif(
    os.getuid() != 0 or not shutil.which("setpriv") or not os.access("/usr/bin/python3", os.X_OK),
    reason="needs root to make a directory and a listening socket of another user")
@pytest.mark.parametrize("owner, mode", [(NOBODY, 0o755), (0, 0o777)])
def test_a_socket_planted_at_the_default_place_is_no_agent(desk, owner, mode):
    """With no XDG_RUNTIME_DIR the agent's default place is under the shared $TMPDIR, where another user
    can make `vault-<uid>/agent.sock` first: commands then find no agent there and ask for the
    passphrase, as with no agent at all; a socket named by VAULT_AGENT_SOCK is still refused outright."""
    place = desk.root / "tmp" / f"vault-{os.getuid()}"
    place.mkdir()
    os.chown(place, owner, owner)
    os.chmod(place, mode)
    os.chmod(desk.root, 0o755)
    os.chmod(desk.root / "tmp", 0o1777)
    planted = _as_nobody_listening(place / "agent.sock")
    try:
        env = {k: v for k, v in desk.env(passphrase=True).items() if k != "XDG_RUNTIME_DIR"}
        for runner in ("1", "0"):
            res = subprocess.run([*VAULT, "doc", "view", desk.office.doc], env={**env, "VAULT_RUNNER": runner},
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=desk.cwd, timeout=60)
            assert (res.returncode, res.stdout, res.stderr) == (0, MARKERS["content"], "")
            res = subprocess.run([*VAULT, "agent", "status"], env={**env, "VAULT_RUNNER": runner},
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=desk.cwd, timeout=60)
            assert res.returncode == 1 and res.stderr.startswith("vault: error: no agent is running at"), res.stderr
        # named outright: the member asked for that socket, and is told why it is not used
        res = subprocess.run([*VAULT, "doc", "view", desk.office.doc], capture_output=True, text=True,
                             env={**env, "VAULT_AGENT_SOCK": str(place / "agent.sock")}, stdin=subprocess.DEVNULL,
                             cwd=desk.cwd, timeout=60)
        assert res.returncode == 1 and res.stderr.startswith("vault: error: the agent socket"), res.stderr
        assert "belongs to another user" in res.stderr and "Traceback" not in res.stderr
    finally:
        planted.communicate("", timeout=30)


@contextlib.contextmanager
def new_cgroup(*, pids: bool = False) -> Iterator[Path | None]:
    """A new cgroup beside this process's (v2, or v1's pids hierarchy) — with ``pids``, one the pids
    controller governs — removed after (what runs in it moved back first); None where none can be
    made (it needs root or a delegated subtree)."""
    made = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _id, controllers, where = line.split(":", 2)
        top = Path("/sys/fs/cgroup") / ("" if controllers == "" else controllers)
        if controllers not in ("", "pids") or not (top / "cgroup.procs").exists():
            continue
        parent = top / where.lstrip("/")
        try:
            if pids and controllers == "" and "pids" not in (parent / "cgroup.subtree_control").read_text().split():
                continue
            candidate = parent / f"vault-test-{os.getpid()}"
            candidate.mkdir()
        except OSError:
            continue
        made = candidate
        break
    try:
        yield made
    finally:
        if made is not None:
            for pid in (made / "cgroup.procs").read_text().split():  # (back where this process is)
                (made.parent / "cgroup.procs").write_text(pid)
            made.rmdir()


def test_the_agent_outlives_a_session_it_cannot_start(desk):
    """When the system refuses the agent a thread for a connection (a task limit reached), that
    connection is closed and the agent goes on serving, its session slot free again."""
    with new_cgroup(pids=True) as group:
        if group is None:
            pytest.skip("cannot make a cgroup with a task limit here (needs root or a delegated cgroup)")
        pid = desk.start("--no-runner")
        (group / "cgroup.procs").write_text(str(pid))
        (group / "pids.max").write_text((group / "pids.current").read_text())  # not one more thread
        for _ in range(server.MAX_SESSIONS + 6):  # more than there are slots
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(30)
            s.connect(str(desk.sock))
            assert no_answer(s, {"op": "hello"})
            s.close()
        assert alive(pid)
        (group / "pids.max").write_text("max")
        assert desk.vault("doc", "view", desk.office.doc).stdout == MARKERS["content"]  # no passphrase: the agent


def test_the_agent_outlives_running_out_of_descriptors(desk):
    """More connections than the agent may hold descriptors for (started under a low open-files
    limit): accepting one fails with EMFILE; the agent waits for a session to end instead of ending,
    and serves after."""
    res = subprocess.run(["prlimit", "--nofile=16:16", *VAULT, "agent", "start", "--no-runner"],
                         env=desk.env(passphrase=True), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         timeout=60, cwd=desk.cwd)
    assert res.returncode == 0, res.stderr
    pid = int(res.stdout.splitlines()[1].removeprefix("echo 'Agent pid ").rstrip("';"))
    desk.pids.append(pid)
    conns = []
    try:
        for _ in range(24):  # queued by the kernel; the agent has descriptors for a few of them
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(desk.sock))
            conns.append(s)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(os.listdir(f"/proc/{pid}/fd")) < 16:
            time.sleep(0.05)
        assert len(os.listdir(f"/proc/{pid}/fd")) == 16  # every descriptor it may have: the next accept fails
        time.sleep(0.5)  # (time for the agent to end, if it does)
        assert alive(pid)
    finally:
        for s in conns:
            s.close()
    assert desk.vault("doc", "view", desk.office.doc).stdout == MARKERS["content"]  # no passphrase: the agent
