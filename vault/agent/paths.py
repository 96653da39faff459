"""Where the agent's socket lives, and the checks on the directory that holds it."""

from __future__ import annotations

import os
import secrets
import socket
import stat
from pathlib import Path

from vault.errors import InputError
from vault.i18n import N_

ENV = "VAULT_AGENT_SOCK"
SOCKET_NAME = "agent.sock"
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_PATH = 107


def default_dir() -> Path:
    """``$XDG_RUNTIME_DIR/vault`` (per user, on tmpfs, removed at logout); else ``$TMPDIR/vault-<uid>``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "vault"
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"vault-{os.getuid()}"


def default_socket() -> Path:
    """The per-user place every terminal of the user looks at."""
    return default_dir() / SOCKET_NAME


def socket_path() -> Path:
    """The socket a command talks to: ``$VAULT_AGENT_SOCK`` when set, else the per-user default."""
    env = os.environ.get(ENV)
    return Path(env) if env else default_socket()


def named() -> bool:
    """Whether the member named the socket (``$VAULT_AGENT_SOCK``) rather than using the default place."""
    return bool(os.environ.get(ENV))


def private_place(path: Path) -> bool:
    """Whether the socket at ``path`` and the directory that holds it are the user's own, that directory
    closed to other users (as ``secure_dir`` makes it): two lstat calls. At the default place under a
    shared $TMPDIR another user can make ``vault-<uid>`` first; what is there is then no agent of ours."""
    uid = os.getuid()
    try:
        d, s = os.lstat(path.parent), os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(d.st_mode) and d.st_uid == uid and not d.st_mode & 0o077 and s.st_uid == uid


def check_length(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_PATH:
        raise InputError(N_("agent socket path is too long for a Unix socket ({path})"),
                         hint=N_("set XDG_RUNTIME_DIR or pass --socket with a shorter path"), path=path)


def secure_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) or accept it only if it is a real directory of ours, closed to others.

    In a shared directory such as /tmp another user could have made the directory first (and could
    then swap the socket): refusing anything not owned by us with group/other bits set stops that.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise InputError(N_("cannot create the agent directory {path}: its parent does not exist"),
                         hint=N_("set XDG_RUNTIME_DIR to an existing directory of yours"), path=path) from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise InputError(N_("refusing the agent directory {path}: not a directory of yours closed to other users"),
                         hint=N_("remove it, or make it yours with mode 0700 (chmod 700 {path})"), path=path)


def listen_private(path: Path, prefix: str, backlog: int) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600 from the moment it exists (bound under a
    temporary name ``<prefix>-<random>.sock`` beside it with umask 0177, then renamed into place)."""
    tmp = path.parent / f"{prefix}-{secrets.token_hex(6)}.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        s.bind(os.fspath(tmp))
    finally:
        os.umask(old)
    try:
        os.chmod(tmp, 0o600)
        s.listen(backlog)
        os.rename(tmp, path)
    except BaseException:
        s.close()
        tmp.unlink(missing_ok=True)
        raise
    return s
