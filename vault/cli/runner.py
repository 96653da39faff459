"""The command runner beside the agent: the command line loaded once, a forked child per command.

``vault.launch`` is its client and ``vault.cli.runchild`` the per-command side. It holds no key: ``vault agent start`` spawns it as a new program (fork and exec) before it reads the
passphrase, so no byte of the identity ever was in its memory, and it never asks the agent for
anything — each command it runs talks to the agent itself, as any command does. It listens on
``<agent socket>.runner`` in the agent's 0700 directory (mode 0600, peer uid checked by the kernel),
and exits when the agent does: the agent holds the write end of a pipe (the lifeline) whose read end
is the runner's, so however the agent ends — stop, idle timeout, lifetime, kill — the runner sees
end-of-file and goes, removing its socket.
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import importlib
import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path

from vault import launch
from vault.agent import paths

# What the desk's commands import, loaded once here instead of in every command (a module missing
# from this list is imported by the command that needs it, as in any process).
PRELOAD = (
    "vault.cli", "vault.cli.core", "vault.cli.search", "vault.cli.access", "vault.cli.agent", "vault.cli.members",
    "vault.cli.lazy", "vault.cli.labels", "vault.cli.shown", "vault.cli.hints",
    "vault.archive.vault", "vault.archive.manifests", "vault.archive.searchindex",
    "vault.office.documents", "vault.office.dossier", "vault.office.find", "vault.office.check",
    "vault.agent.client", "vault.store.identity", "vault.crypto.age", "vault.crypto.sign",
    "click.testing", "getpass", "termios", "zoneinfo",
)
# The runner's socket stays at most this long without a client before it is checked again (seconds);
# the lifeline, not this, ends it.
POLL = 5.0


def socket_for(agent_socket: Path) -> Path:
    return Path(launch.runner_socket(os.fspath(agent_socket)))


def spawn(agent_socket: Path) -> int:
    """Start a runner for the agent at ``agent_socket``; return the lifeline's write end, which the
    agent must hold for as long as it runs (and everyone else must close).

    A new program, not a fork of this one: whatever this process holds later (the passphrase, the
    identity) was never in the runner's memory. Its environment is this one's without the passphrase
    file's name; it runs from / with no terminal, in a session of its own.
    """
    r, w = os.pipe()
    env = {k: v for k, v in os.environ.items() if k != "VAULT_PASSPHRASE_FILE"}
    # In the C locale Python turns UTF-8 mode on by itself and sets LC_CTYPE for its children, which
    # would then start without it: say it outright, so the runner is configured as its clients are.
    env["PYTHONUTF8"] = str(sys.flags.utf8_mode)
    # The interpreter's options as this process has them (subprocess's own helper for that).
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    try:
        # Started from the agent's own directory, which `-m` puts first on its path (it holds only
        # sockets); the runner then moves to /. Each command gets its client's path.
        subprocess.Popen([sys.executable, *flags, "-m", __name__,
                          "--socket", os.fspath(socket_for(agent_socket)), "--lifeline", str(r)],
                         pass_fds=(r,), env=env, cwd=agent_socket.parent, start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        os.close(w)
        w = -1
    finally:
        os.close(r)
    return w


def _answers(path: Path) -> bool:
    """True if a runner answers at ``path`` (a stale socket, with nobody listening, is removed)."""
    s = launch.connect(os.fspath(path), timeout=5.0)
    if s is None:
        try:
            if os.path.exists(path) and not _listening(path):
                os.unlink(path)
        except OSError:
            pass
        return False
    s.close()
    return True


def _listening(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(os.fspath(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _bind(path: Path) -> socket.socket | None:
    """Listen at ``path`` (0600 from the start, put in place by a rename) unless a runner already does."""
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
        if _answers(path):
            return None
        return paths.listen_private(path, ".runner", 64)
    finally:
        os.close(dfd)


def serve(listener: socket.socket, lifeline: int, path: Path, fp: bytes, cm: bytes) -> None:
    """Accept same-user connections and fork a child for each, until the lifeline ends."""
    from vault.agent import harden
    from vault.cli import runchild

    ino = os.stat(path).st_ino
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(lifeline, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in sel.select(POLL):
                if key.fileobj == lifeline:
                    return  # the agent has gone (its end of the pipe is closed)
                try:
                    conn, _addr = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                if not harden.same_user(conn):
                    conn.close()  # another user: not a byte read, nothing forked
                    continue
                try:
                    pid = os.fork()
                except OSError:
                    conn.close()
                    continue
                if pid == 0:
                    code = 1
                    try:
                        sel.close()
                        listener.close()
                        os.close(lifeline)
                        code = runchild.handle(conn, fp, cm)
                    finally:
                        os._exit(code)  # never back into this loop, whatever happened
                conn.close()
    finally:
        sel.close()
        listener.close()
        try:
            if os.lstat(path).st_ino == ino:
                os.unlink(path)
        except FileNotFoundError:
            pass


def _preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a module this installation lacks: whoever needs it will say so
    _warm()


def _warm() -> None:
    """Fill the caches every command fills first, with what depends only on the package's own files
    (which the fingerprint covers): the message catalogues and the compiled record schemas. Nothing
    that depends on the machine, the environment or a vault (time zones, plugins, the language chosen)."""
    from vault import i18n
    from vault import schemas  # type: ignore[attr-defined]  # schemas/ ships as vault.schemas (pyproject package-dir)
    from vault.store import records

    for lang in i18n.LANGUAGES:
        i18n.translations(lang)
    for f in sorted(Path(schemas.__file__).parent.glob("*.schema.json")):
        records._fast_check(f.name.removesuffix(".schema.json"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="vault-runner")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--lifeline", type=int, required=True)
    opts = ap.parse_args(argv)
    path = Path(opts.socket)
    os.chdir("/")
    # Both taken before anything is imported: a file changed during the imports makes this runner
    # disagree with every client, which then runs its command itself.
    fp, cm = launch.fingerprint(), launch.compat()
    _preload()
    # Out of the collector's sight: a child's first collection would otherwise walk (and so copy, page
    # by page) every object the imports made, which costs more than the imports saved.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    os.set_blocking(opts.lifeline, False)
    listener = _bind(path)
    if listener is None:
        return
    listener.setblocking(False)
    serve(listener, opts.lifeline, path, fp, cm)


if __name__ == "__main__":
    main()
