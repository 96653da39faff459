"""The ``vault`` entry point: hand the command to the preloaded runner when one serves, else run it here.

The runner (``vault.cli.runner``) is a process of the same user, started beside the identity agent,
that has already imported the command line; it forks a child per command that takes over this
process's standard streams, working directory, environment and umask and runs the command exactly as
this process would have. Everything here is kept to modules Python has loaded before ``main`` runs
(``_socket`` rather than ``socket``, which would import ``selectors`` and ``enum``): its point is to
cost nothing. Whenever anything is not exactly as expected — no runner, another user's socket, another
installation, another interpreter configuration — the command runs in this process as before.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing would cost what this module saves)

if TYPE_CHECKING:  # (annotations only: at run time this module imports nothing it can avoid)
    from _socket import socket
    from types import FrameType

MAGIC = b"vault-runner-1"
RUNNER_SUFFIX = ".runner"
#: How long to wait for the runner to say it will run the command; after that, run it here.
READY_TIMEOUT = 10.0
#: Signals passed on to the command while it runs in the runner (a terminal's ^C, kill, hang-up, ^\).
FORWARDED = (2, 15, 1, 3)  # SIGINT, SIGTERM, SIGHUP, SIGQUIT (the same numbers on every Linux)
MAX_MESSAGE = 16 << 20
#: How many descriptors one message can carry (the kernel's SCM_MAX_FD).
MAX_FDS = 253


def agent_socket() -> str:
    """The agent's socket: ``$VAULT_AGENT_SOCK``, else ``$XDG_RUNTIME_DIR/vault/agent.sock``, else
    ``$TMPDIR/vault-<uid>/agent.sock``: what ``vault.agent.paths.socket_path`` says, worked out here
    without importing anything (``tests/test_runner.py`` checks that the two agree)."""
    env = os.environ.get("VAULT_AGENT_SOCK")
    if env:
        return env
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "vault", "agent.sock")
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"vault-{os.getuid()}", "agent.sock")


def runner_socket(agent: str) -> str:
    return agent + RUNNER_SUFFIX


def fingerprint() -> bytes:
    """What the runner's preloaded modules and caches depend on, as this process would import them:
    the interpreter, the vault package's files (paths, sizes, mtimes; its schemas too, which a source
    checkout keeps beside it) and every import directory's mtime (installing, upgrading or removing a
    distribution changes its directory)."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    parts = [sys.executable, sys.version, pkg]
    todo = [pkg]
    source_schemas = os.path.join(os.path.dirname(pkg), "schemas")  # vault.schemas in a source checkout
    if os.path.isdir(source_schemas):
        todo.append(source_schemas)
    while todo:
        d = todo.pop()
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name == "__pycache__":
                continue
            if e.is_dir(follow_symlinks=False):
                todo.append(e.path)
            else:
                st = e.stat()
                parts.append(f"{e.path}:{st.st_size}:{st.st_mtime_ns}")
    for p in base_path():
        try:
            parts.append(f"{p}:{os.stat(p or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{p}:-")
    return "\n".join(parts).encode("utf-8", "surrogateescape")


def base_path() -> list[str]:
    """``sys.path`` without the entry Python puts first for the script or ``-m`` (the runner sets the
    client's own first entry in each command)."""
    return list(sys.path if sys.flags.safe_path else sys.path[1:])


def compat() -> bytes:
    """The interpreter settings a command could notice; the runner serves only clients that share them."""
    import _locale

    flags = [(n, getattr(sys.flags, n)) for n in dir(sys.flags)
             if not n.startswith("_") and n not in ("count", "index", "n_fields",
                                                   "n_sequence_fields", "n_unnamed_fields")]
    return repr((flags, sorted(sys._xoptions.items()), sys.warnoptions, sys.getfilesystemencoding(),
                 sys.getfilesystemencodeerrors(), _locale.setlocale(_locale.LC_CTYPE, None),
                 os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups()))).encode()


def pack(items: list[bytes]) -> bytes:
    out = [len(items).to_bytes(4, "big")]
    for x in items:
        out += [len(x).to_bytes(4, "big"), x]
    body = b"".join(out)
    return len(body).to_bytes(4, "big") + body


def unpack(body: bytes) -> list[bytes]:
    n, pos, items = int.from_bytes(body[:4], "big"), 4, []
    for _ in range(n):
        size = int.from_bytes(body[pos:pos + 4], "big")
        items.append(body[pos + 4:pos + 4 + size])
        pos += 4 + size
        if pos > len(body):
            raise ValueError("truncated")
    return items


def peer_uid(sock: socket) -> int:
    import _socket
    from array import array

    creds = array("i")
    creds.frombytes(sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, creds.itemsize * 3))
    return creds[1]


def _stdio() -> bytes:
    """How Python made this process's standard streams (encoding and buffering follow the locale,
    ``PYTHONIOENCODING``, ``-u`` and whether each is a terminal)."""
    return "\0".join(f"{s.encoding}\0{s.errors}\0{int(s.line_buffering)}\0{int(getattr(s, 'write_through', False))}\0"
                     f"{int(type(s.buffer).__name__ == 'FileIO')}" for s in (sys.stdin, sys.stdout, sys.stderr)).encode()


def _limits() -> bytes:
    import resource

    out = []
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            soft, hard = resource.getrlimit(getattr(resource, name))
            out.append(f"{getattr(resource, name)}:{soft}:{hard}")
    return ",".join(out).encode()


def _ignored() -> bytes:
    import signal

    return ",".join(str(s) for s in FORWARDED if signal.getsignal(s) is signal.SIG_IGN).encode()


def _a_prompt_would_differ() -> bool:
    """A hidden prompt (the passphrase) in the runner's child, which has no controlling terminal, reads
    standard input and writes to standard error instead of /dev/tty: the same thing, unless standard
    error is not that terminal."""
    try:
        if not os.isatty(0):
            return False
        return not os.isatty(2) or os.fstat(0).st_rdev != os.fstat(2).st_rdev
    except OSError:
        return True


def _stdio_open() -> bool:
    """Whether descriptors 0, 1 and 2 are all open and Python made a stream of each: only then can the
    runner's child take them on (a closed one would be none of the three, or would be taken by the next
    descriptor opened here, such as the working directory's)."""
    if sys.stdin is None or sys.stdout is None or sys.stderr is None:
        return False
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return False
    return True


def _inherited() -> list[int] | None:
    """The descriptors above 2 that this process inherited and would pass on to a program it ran (not
    close-on-exec: Python opens its own so). A command may name one (``/dev/fd/3``, a shell's ``<(...)``,
    a link to ``/dev/fd/N``), so the runner's child gets each under the same number. None when they
    cannot be listed, or are more than one message can carry."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    out = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                out.append(fd)
        except OSError:
            pass  # the listing's own descriptor, closed by now
    return sorted(out) if len(out) <= MAX_FDS - 4 else None


def request(op: bytes = b"run", inherited: list[int] | None = None) -> list[bytes]:
    """The message for the runner: what the command's process would have been."""
    if op != b"run":
        return [MAGIC, op, fingerprint(), compat()]
    mask = os.umask(0o077)
    os.umask(mask)
    sched = f"{os.getpriority(os.PRIO_PROCESS, 0)}:{','.join(map(str, sorted(os.sched_getaffinity(0))))}"
    return [MAGIC, op, fingerprint(), compat(), str(mask).encode(), _limits(), _ignored(), _stdio(),
            b"\0".join(os.fsencode(p) for p in sys.path), b"\0".join(os.fsencode(a) for a in sys.argv),
            b"\0".join(k + b"=" + v for k, v in os.environb.items()), sched.encode(),
            ",".join(map(str, inherited or [])).encode()]


def connect(path: str, timeout: float = READY_TIMEOUT) -> socket | None:
    """A connected socket to the runner at ``path`` after checking it is ours, or None."""
    import _socket

    if len(os.fsencode(path)) > 107:
        return None
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        if peer_uid(s) != os.getuid():  # a socket of another user must get nothing of ours
            s.close()
            return None
    except OSError:
        s.close()
        return None
    return s


def ping(agent_socket: str | os.PathLike[str]) -> dict | None:
    """The runner beside the agent at ``agent_socket``: its pid and whether this installation's commands
    would run in it (``current``), or None when none answers."""
    s = connect(runner_socket(os.fspath(agent_socket)), timeout=5.0)
    if s is None:
        return None
    answer = b""
    try:
        s.sendall(pack(request(b"ping")))
        while chunk := s.recv(64):
            answer += chunk
    except OSError:
        return None
    finally:
        s.close()
    pid, _, state = answer[1:].decode("ascii", "replace").partition(" ")
    if answer[:1] != b"P" or not pid.isdigit():
        return None
    return {"pid": int(pid), "current": state == "same"}


def recv_exact(s: socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _run_in_runner() -> int | None:
    """The command's exit status as run by the runner, or None when the runner does not run it (then
    nothing has happened and the caller runs it here)."""
    import _socket
    from array import array

    if os.environ.get("VAULT_RUNNER", "") in ("0", "off", "no") or not _stdio_open() or _a_prompt_would_differ():
        return None
    inherited = _inherited()
    if inherited is None:
        return None
    s = connect(runner_socket(agent_socket()))
    if s is None:
        return None
    try:
        try:
            cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            s.close()
            return None
        try:
            msg = pack(request(inherited=inherited))
            fds = array("i", [cwd, 0, 1, 2, *inherited])
            sent = s.sendmsg([msg], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds.tobytes())])
            if sent < len(msg):
                s.sendall(msg[sent:])
        finally:
            os.close(cwd)
        if s.recv(1) != b"R":  # refused (another installation, another configuration) or gone
            s.close()
            return None
    except (OSError, EOFError):
        s.close()
        return None
    # From here the command is the runner's: "G" is the commit point, the answer is its exit status.
    import signal

    def forward(signum: int, frame: FrameType | None) -> None:
        try:
            s.send(bytes([signum]))
        except OSError:
            pass

    for sig in FORWARDED:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, forward)
    s.settimeout(None)
    try:
        s.sendall(b"G")
        kind, value = recv_exact(s, 2)
    except (OSError, EOFError):
        _lost()
        return 1
    finally:
        s.close()
    if kind == ord("S"):  # killed by a signal: so is this process, for whoever waits for it
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        try:
            signal.signal(value, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL and SIGSTOP have no handler to reset
        os.kill(os.getpid(), value)
        return 128 + value
    return value


def _lost() -> None:
    from vault.i18n import N_, _

    print(_("vault: error: {message}").format(message=_(N_("the command runner stopped before the command ended"))),
          file=sys.stderr)
    print(_("vault: hint: {hint}").format(hint=_(N_("run the command again; stop the agent's runner with "
                                                    "'vault agent stop' if this happens again"))), file=sys.stderr)


def main() -> None:
    """Console-script entry point."""
    status = _run_in_runner()
    if status is None:
        from vault.cli import main as run_here

        run_here()
        return
    sys.exit(status)
