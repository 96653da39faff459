"""The agent daemon as a process among others: what it inherits from the command that started it, where
commands look for it, and how it copes when the system refuses it something. Real `vault agent`
processes, real sockets."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess

import pytest

from tests.office import MARKERS
from tests.test_agent import VAULT, alive, open_desk
from tests.test_runner import Installed

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
