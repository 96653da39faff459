"""Agent commands: ``vault agent start|stop|status`` (the library is vault.agent)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from vault.cli import Ctx, _passphrase, cli, emit, json_opt
from vault.errors import InputError, UsageError
from vault.i18n import _, N_

_DURATION = re.compile(r"(\d+)([smhd]?)\Z")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str, what: str) -> int:
    m = _DURATION.match(text.strip())
    if not m or int(m[1]) == 0:
        raise UsageError(N_("bad {what} {text!r}"), hint=N_("write a positive number of seconds, minutes or hours: 90s, 15m, 8h"), what=what, text=text)
    return int(m[1]) * _UNIT[m[2] or "s"]


@cli.group("agent")
def agent_grp() -> None:
    """An agent that holds your unlocked identity, so commands need no passphrase."""


@agent_grp.command("start")
@click.option("--idle-timeout", default="15m", show_default=True,
              help="Exit after this long without decrypting or signing (90s, 15m, 2h).")
@click.option("--lifetime", default="8h", show_default=True, help="Exit after this long whatever happens.")
@click.option("--socket", "socket_path", type=click.Path(dir_okay=False),
              help="Listen here instead of the per-user default ($XDG_RUNTIME_DIR/vault/agent.sock).")
@click.option("--no-runner", is_flag=True,
              help="Start no command runner (a process with the command line loaded that runs commands faster).")
@json_opt
@click.pass_obj
def agent_start(obj: Ctx, idle_timeout: str, lifetime: str, socket_path: str | None, no_runner: bool,
                as_json: bool) -> None:
    """Unlock your identity once and keep it in a background agent.

    Prints shell commands that set VAULT_AGENT_SOCK: run as  eval "$(vault agent start)".
    Commands of the same user find the agent at the default place without it, too.
    """
    from vault.store import identity
    from vault.agent import daemon, harden, paths

    idle, life = _seconds(idle_timeout, "--idle-timeout"), _seconds(lifetime, "--lifetime")
    if not obj.identity_file:
        raise InputError(N_("the agent needs an identity to unlock"), hint=N_("pass --identity FILE or set VAULT_IDENTITY"))
    path = Path(obj.identity_file)
    if not path.is_file():
        raise InputError(N_("identity file {path} not found"), hint=N_("pass --identity FILE or set VAULT_IDENTITY"), path=path)
    sock = Path(socket_path).absolute() if socket_path else paths.default_socket()
    lifeline = -1
    if not no_runner:
        from vault.cli import runner

        paths.check_length(sock)
        paths.secure_dir(sock.parent)
        # Spawned before the passphrase is read (a new program: it never has the identity) and before
        # the limits below (its commands take their clients' limits, core dumps included).
        lifeline = runner.spawn(sock)
    try:
        harden.no_core_dumps()  # before the secret is in this process: the daemon is forked from it
        ident = identity.load_identity(path, _passphrase(_("Passphrase for {name}").format(name=path.name)))
        pid = daemon.start(ident, path, sock, idle_timeout=idle, lifetime=life,
                           keep=(lifeline,) if lifeline >= 0 else ())  # the daemon keeps the lifeline
    finally:
        if lifeline >= 0:
            import os

            os.close(lifeline)  # now only the agent holds it: the runner lives as long as the agent
    if as_json:
        emit({"socket": str(sock), "pid": pid}, True, "")
        return
    quoted = shlex.quote(str(sock))
    click.echo(f"VAULT_AGENT_SOCK={quoted}; export VAULT_AGENT_SOCK;")
    said = _("Agent pid {pid}").format(pid=pid)
    click.echo(f"echo {shlex.quote(said)};")  # shown by the shell that evaluates these lines


@agent_grp.command("stop")
@json_opt
@click.pass_obj
def agent_stop(obj: Ctx, as_json: bool) -> None:
    """Stop the agent (VAULT_AGENT_SOCK, else the per-user default); it forgets the identity."""
    from vault.agent import daemon, paths
    from vault.errors import NotFoundError

    if not daemon.stop():
        raise NotFoundError(N_("no agent is running at {socket_path}"), socket_path=paths.socket_path())
    if as_json:
        emit({"stopped": True}, True, "")
    else:
        click.echo(_("agent stopped"), err=True)


@agent_grp.command("status")
@json_opt
@click.pass_obj
def agent_status(obj: Ctx, as_json: bool) -> None:
    """Whether an agent is running, for which identity, and for how long (exit 1 if none)."""
    from vault.agent import daemon, paths
    from vault.errors import NotFoundError

    st = daemon.status()
    if st is None:
        raise NotFoundError(N_("no agent is running at {socket_path}"),
                            hint=N_('start one with: eval "$(vault agent start)"'), socket_path=paths.socket_path())
    emit(st, as_json, lambda s: (
        _("agent pid {pid} at {socket}\nidentity: {identity}\npublic key: {public}\n"
          "exits after {idle} s idle (timeout {timeout} s), {life} s at most").format(
            pid=s["pid"], socket=s["socket"], identity=s["identity_file"], public=s["public"], idle=int(s["idle_left"]),
            timeout=int(s["idle_timeout"]), life=int(s["lifetime_left"]))
        + "\n" + (_("command runner: pid {pid}").format(pid=s["runner"]["pid"]) if s.get("runner")
                  else _("command runner: none"))))
