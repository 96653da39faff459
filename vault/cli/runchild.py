"""One command in the runner: a forked child takes the request, a grandchild becomes the client's process.

A child forked from the pristine runner receives the client's request and its descriptors, and a
grandchild takes on the client's process state and runs the command line. The child checks everything that could make the command behave differently from the client running
it itself (installation fingerprint, interpreter settings, limits it could not apply) and answers
``R`` (ready) or ``N`` (no: the client runs the command itself, nothing having happened). Only after
the client's ``G`` does the grandchild start; the child then passes on the signals the client
forwards, and finally sends the grandchild's exit status: ``E`` and the code, or ``S`` and the
signal that killed it. Nothing of the request (arguments, environment) is logged or kept anywhere.
"""

from __future__ import annotations

import ctypes
import fcntl
import io
import os
import resource
import select
import signal
import socket
import struct
import sys
from typing import Any

from vault import launch

RECV_TIMEOUT = 30.0
_TERM = (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
# What a process is run in, beyond what the request carries: a client whose namespaces, root directory,
# cgroup, security label, capabilities, no_new_privs or seccomp differ from the runner's (unshare,
# chroot, a container, systemd-run, setpriv, a sandbox) runs its command itself.
_NAMESPACES = ("mnt", "pid", "user", "net", "ipc", "uts", "cgroup", "time")
_STATUS = (b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb", b"NoNewPrivs", b"Seccomp", b"Seccomp_filters")
# ioprio_set and ioprio_get (asm-generic numbers on aarch64 and riscv64); elsewhere I/O priorities
# cannot be compared and every command runs in its client.
_IOPRIO = {"x86_64": (251, 252), "aarch64": (30, 31), "riscv64": (30, 31)}.get(os.uname().machine)
_IOPRIO_WHO_PROCESS = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _recv_request(conn: socket.socket) -> tuple[list[bytes], list[int]]:
    """The request's fields and the descriptors that came with it (cwd, stdin, stdout, stderr, then the
    client's other inherited ones)."""
    fds: list[int] = []
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        msg, anc, _flags, _addr = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * launch.MAX_FDS))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
                        for i in range(0, len(payload) - len(payload) % 4, 4)]
        if not msg:
            raise EOFError
        data += msg
        if len(data) >= 4 and int.from_bytes(data[:4], "big") > launch.MAX_MESSAGE:
            raise ValueError("request too large")
    return launch.unpack(data[4:4 + int.from_bytes(data[:4], "big")]), fds


def _peer_pid(conn: socket.socket) -> int:
    pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    if pid <= 0:
        raise ValueError("peer")  # not in this process's pid namespace
    return pid


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _surroundings(pid: int | str) -> tuple:
    """What process ``pid`` runs in that a command could notice and the request does not carry."""
    base = f"/proc/{pid}"
    out: list[Any] = []
    for ns in _NAMESPACES:
        try:
            st = os.stat(f"{base}/ns/{ns}")
            out.append((st.st_dev, st.st_ino))
        except FileNotFoundError:
            out.append(None)  # a kernel without that kind of namespace
    st = os.stat(f"{base}/root")
    out.append((st.st_dev, st.st_ino))
    # The mounts as seen from the process's root: a chroot into a bind mount has the same root inode.
    out.append(_read(f"{base}/mountinfo"))
    out.append(_read(f"{base}/cgroup"))
    try:
        out.append(_read(f"{base}/attr/current"))  # the LSM label (AppArmor, SELinux)
    except OSError as e:
        out.append(e.errno)  # no LSM that has one
    out += [ln for ln in _read(f"{base}/status").splitlines() if ln.split(b":")[0] in _STATUS]
    return tuple(out)


def _ioprio(pid: int) -> int:
    if _IOPRIO is None:
        raise OSError("I/O priority")
    value = _libc.syscall(_IOPRIO[1], _IOPRIO_WHO_PROCESS, pid)
    if value < 0:
        raise OSError(ctypes.get_errno(), "ioprio_get")
    return value


def _take_scheduling(pid: int) -> None:
    """Give this process the client's scheduling policy and I/O priority (the command's process, forked
    from it, inherits both); OSError when one of them is not this process's to take."""
    policy, param = os.sched_getscheduler(pid), os.sched_getparam(pid)
    if policy & getattr(os, "SCHED_RESET_ON_FORK", 0x40000000):
        raise OSError("scheduling")  # the command's process, forked, would not have it
    if (policy, param.sched_priority) != (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority):
        os.sched_setscheduler(0, policy, param)
    io = _ioprio(pid)
    if io != _ioprio(0) and _libc.syscall(_IOPRIO[0], _IOPRIO_WHO_PROCESS, 0, io) != 0:  # type: ignore[index]
        raise OSError(ctypes.get_errno(), "ioprio_set")
    if (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, _ioprio(0)) != (policy, param.sched_priority, io):
        raise OSError("scheduling")


def _limits(text: bytes) -> list[tuple[int, int, int]]:
    """The client's resource limits, checked to be ones this process may set (a hard limit above ours
    could not be: that client runs its command itself)."""
    out = []
    for item in text.decode().split(",") if text else []:
        res, soft, hard = (int(x) for x in item.split(":"))
        _mysoft, myhard = resource.getrlimit(res)
        inf = resource.RLIM_INFINITY
        if myhard != inf and (hard == inf or hard > myhard):
            raise ValueError("limit")
        out.append((res, soft, hard))
    return out


def handle(conn: socket.socket, fp: bytes, cm: bytes) -> int:
    """The child's whole life; returns its exit code (the runner's loop is never returned to)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this one waits for its own child
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    conn.settimeout(RECV_TIMEOUT)
    fds: list[int] = []
    try:
        fields, fds = _recv_request(conn)
        if len(fields) < 4 or fields[0] != launch.MAGIC:
            return _refuse(conn, fds)
        if fields[1] == b"ping":
            conn.sendall(b"P" + str(os.getppid()).encode() + (b" same" if fields[2:4] == [fp, cm] else b" other"))
            return 0
        if fields[1] != b"run" or len(fields) != 13 or fields[2] != fp or fields[3] != cm:
            return _refuse(conn, fds)
        req = _parse(fields)
        if len(fds) != 4 + len(req["fds"]):
            return _refuse(conn, fds)
        client = _peer_pid(conn)
        if _surroundings(client) != _surroundings("self"):
            return _refuse(conn, fds)
        _take_scheduling(client)
    except (OSError, EOFError, ValueError, UnicodeError):
        return _refuse(conn, fds)
    conn.sendall(b"R")
    if conn.recv(1) != b"G":
        return 0  # the client gave up: it runs the command itself, and nothing has happened here
    pid = os.fork()
    if pid == 0:
        conn.close()
        _become_client(req, fds)  # never returns
    for fd in fds:
        os.close(fd)  # the client's streams stay open in the command only: a reader sees its end
    return _supervise(conn, pid)


def _refuse(conn: socket.socket, fds: list[int]) -> int:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        conn.sendall(b"N")
    except OSError:
        pass
    return 0


def _parse(fields: list[bytes]) -> dict:
    encs = fields[7].decode().split("\0")
    if len(encs) != 15:
        raise ValueError("stdio")
    env = {}
    for item in fields[10].split(b"\0") if fields[10] else []:
        k, sep, v = item.partition(b"=")
        if not sep:
            raise ValueError("environment")
        env[k] = v
    nice, _, cpus = fields[11].decode().partition(":")
    if int(nice) < os.getpriority(os.PRIO_PROCESS, 0):
        raise ValueError("priority")  # a higher priority than ours is not ours to give
    if not {int(c) for c in cpus.split(",") if c} <= os.sched_getaffinity(0):
        raise ValueError("cpus")
    numbers = [int(x) for x in fields[12].decode().split(",") if x]
    if numbers != sorted(set(numbers)) or any(n < 3 for n in numbers):
        raise ValueError("descriptors")
    # Each is moved above the highest first: all must fit under this process's limit.
    if max(numbers, default=2) + 5 + len(numbers) > resource.getrlimit(resource.RLIMIT_NOFILE)[0]:
        raise ValueError("descriptors")
    return {"fds": numbers, "nice": int(nice), "cpus": {int(c) for c in cpus.split(",") if c}, "umask": int(fields[4]),
            "limits": _limits(fields[5]),
            "ignored": [int(x) for x in fields[6].decode().split(",") if x],
            "stdio": [(encs[i], encs[i + 1], encs[i + 2] == "1", encs[i + 3] == "1", encs[i + 4] == "1")
                      for i in (0, 5, 10)],
            "path": [os.fsdecode(p) for p in fields[8].split(b"\0")] if fields[8] else [],
            "argv": [os.fsdecode(a) for a in fields[9].split(b"\0")], "env": env}


def _supervise(conn: socket.socket, pid: int) -> int:
    """Pass the client's signals on until the command ends; then tell the client how it ended."""
    pidfd = os.pidfd_open(pid)
    conn.setblocking(False)
    try:
        while True:
            ready, _, _ = select.select([conn.fileno(), pidfd], [], [])
            if pidfd in ready:
                break
            try:
                data = conn.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # the client has gone: so does its command, as if it had been killed
                os.kill(pid, signal.SIGTERM)
                break
            for sig in data:
                if sig in launch.FORWARDED:
                    os.kill(pid, sig)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    conn.setblocking(True)
    if os.WIFSIGNALED(status):
        answer = b"S" + bytes([os.WTERMSIG(status)])
    else:
        answer = b"E" + bytes([os.WEXITSTATUS(status) & 0xFF])
    try:
        conn.sendall(answer)
    except OSError:
        pass
    return 0


def _stream(fd: int, mode: str, how: tuple[str, str, bool, bool, bool]) -> Any:
    """A standard stream made as the client's Python made its own: encoding, errors, line buffering,
    write-through and an unbuffered binary layer (``-u``) as it says; newline "\\n"."""
    encoding, errors, line_buffering, write_through, unbuffered = how
    raw = io.FileIO(fd, mode, closefd=False)
    raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]
    buffered: Any = raw
    if not unbuffered:
        buffered = io.BufferedReader(raw) if mode == "rb" else io.BufferedWriter(raw)
    text: Any = io.TextIOWrapper(buffered, encoding=encoding, errors=errors, newline="\n",
                                 line_buffering=line_buffering, write_through=write_through)
    text.mode = mode[0]
    return text


def _become_client(req: dict, fds: list[int]) -> None:
    """In the grandchild: take on the client's process state, run the command line, exit."""
    code = 1
    try:
        # Above every number they go to first: a descriptor that arrived as one of those numbers would
        # be overwritten by the dup2s.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, max([2, *req["fds"]]) + 1) for fd in fds]
        for fd in fds:
            os.close(fd)
        fds = moved
        cwd, *stdio = fds[:4]
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        for target, fd in zip(req["fds"], fds[4:]):
            os.dup2(fd, target)  # the client's number, inheritable as it was there
        os.fchdir(cwd)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.umask(req["umask"])
        os.setpriority(os.PRIO_PROCESS, 0, req["nice"])
        if req["cpus"]:
            os.sched_setaffinity(0, req["cpus"])
        for res, soft, hard in req["limits"]:
            resource.setrlimit(res, (soft, hard))
        for sig in req["ignored"]:
            signal.signal(sig, signal.SIG_IGN)
        os.environ.clear()
        for k, v in req["env"].items():
            os.environb[k] = v
        import time

        time.tzset()
        zoneinfo = sys.modules.get("zoneinfo")
        if zoneinfo is not None:  # preloaded: its search path was taken from the runner's environment
            zoneinfo.reset_tzpath()
            zoneinfo.ZoneInfo.clear_cache()
        sys.argv[:] = req["argv"]
        sys.path[:] = req["path"]
        sin, sout, serr = req["stdio"]
        sys.stdin, sys.stdout, sys.stderr = _stream(0, "rb", sin), _stream(1, "wb", sout), _stream(2, "wb", serr)
        for name in ("stdin", "stdout", "stderr"):
            setattr(sys, f"__{name}__", getattr(sys, name))  # what Python started with, as far as the command knows
        if "vault.store.seam" in sys.modules:
            sys.modules["vault.store.seam"]._from_env()  # a test seam armed from the environment
        code = _run()
    finally:
        os._exit(code)


def _run() -> int:
    """``vault.cli.main()`` as the interpreter runs a program: the exit code of SystemExit, a traceback
    and 1 for an uncaught exception, atexit handlers and non-daemon threads finished, streams flushed."""
    from vault.cli import main

    code = 0
    try:
        main()
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as Python does: the parent sees the signal
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    threading = sys.modules.get("threading")
    if threading is not None and hasattr(threading, "_shutdown"):
        threading._shutdown()
    import atexit

    atexit._run_exitfuncs()
    if not _flush():
        code = 120
    return code


def _flush() -> bool:
    ok = True
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (OSError, ValueError):
            ok = False
    return ok
