"""Starting an agent (bind, fork, detach), and finding or stopping the one running."""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import sys
import time
from pathlib import Path

from vault.agent import paths, server
from vault.launch import ping as runner_ping, runner_socket
from vault.agent.client import AgentClient, AgentError, connect
from vault.errors import ConflictError, InputError
from vault.i18n import N_
from vault.store.identity import MemberIdentity

STOP_WAIT = 5.0


def _running(path: Path) -> bool:
    """True if an agent answers at ``path``; a stale socket (nobody listening) is removed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise InputError(N_("{path} exists and is not a socket"), hint=N_("remove it, or choose another --socket"), path=path)
    try:
        with AgentClient.connect(path) as c:
            c.call("hello")
        return True
    except ConnectionRefusedError:
        os.unlink(path)  # left by an agent that died without cleaning up
        return False
    except AgentError:
        return True


def _bind(path: Path) -> socket.socket:
    """A listening socket at ``path``, mode 0600 from the moment it exists, put in place by a rename."""
    return paths.listen_private(path, ".agent", 16)


def start(ident: MemberIdentity, identity_file: Path, path: Path, *, idle_timeout: float, lifetime: float,
          keep: tuple[int, ...] = ()) -> int:
    """Start a daemon holding ``ident`` at ``path``; return its pid once it listens.

    The caller should already have called ``harden.no_core_dumps()`` (before the passphrase was
    read); the daemon inherits it across fork. Of the descriptors this process holds, the daemon keeps
    its own sockets and ``keep`` (the runner's lifeline) and closes every other one before this returns.
    """
    paths.check_length(path)
    paths.secure_dir(path.parent)
    agent = server.Agent(ident, os.path.abspath(identity_file), idle_timeout=idle_timeout, lifetime=lifetime)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)  # two starts at once: the second sees the first running
        if _running(path):
            raise ConflictError(N_("an agent is already running at {path}"),
                                hint=N_("use it, or stop it first with 'vault agent stop'"), path=path)
        listener = _bind(path)
        return _detach(listener, agent, path, close=[dfd], keep=keep)
    finally:
        os.close(dfd)


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor above 2 not in ``keep``: whatever the starting command inherited (a
    script's lock, a pipe another process waits on the end of) must not live as long as the agent."""
    try:
        open_fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))  # (its own is closed by now)
    except OSError:
        open_fds = list(range(3, os.sysconf("SC_OPEN_MAX")))
    for fd in open_fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _detach(listener: socket.socket, agent: server.Agent, path: Path, *, close: list[int],
            keep: tuple[int, ...] = ()) -> int:
    """Fork twice (no controlling terminal, not a child of the shell) and serve in the grandchild,
    which keeps of this process's descriptors only the ones it serves with and ``keep``."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            for fd in close:
                os.close(fd)  # the directory lock must not outlive the start command
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.chdir("/")
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)  # `eval "$(vault agent start)"` waits for stdout to close
            os.close(null)
            # Before the pid is reported, so that nothing inherited is still held when start() returns.
            _close_all_but({listener.fileno(), *agent.descriptors(), w, *keep})
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            server.run_daemon(listener, agent, path)
        finally:
            os._exit(0)
    os.close(w)
    listener.close()
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    if not data:
        raise AgentError(N_("the agent did not start"))
    return int(data)


def status(path: Path | None = None) -> dict | None:
    """The running agent's status, or None when there is none."""
    c = connect(path)
    if c is None:
        return None
    path = path or paths.socket_path()
    with c:
        ans = c.call("status")
    ans.pop("ok", None)
    ans["socket"] = os.fspath(path)
    ans["runner"] = runner_ping(path)
    return ans


def stop(path: Path | None = None) -> bool:
    """Ask the agent to exit and wait until its socket is gone; False when none was running."""
    c = connect(path)
    if c is None:
        return False
    path = path or paths.socket_path()
    with c:
        c.call("stop")
    deadline = time.monotonic() + STOP_WAIT
    runner_path = runner_socket(os.fspath(path))
    while (os.path.lexists(path) or os.path.lexists(runner_path)) and time.monotonic() < deadline:
        time.sleep(0.01)  # the runner goes when the agent does (its lifeline ends)
    return True
