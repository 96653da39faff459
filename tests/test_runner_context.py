"""What a command through the runner takes from its client beyond arguments, environment and standard
streams: closed standard streams, other inherited descriptors, the client's namespaces, root and
scheduling. Whatever the runner cannot give the command as the client has it, the client keeps: the
command then runs in the ``vault`` process itself, with the same result."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.office import MARKERS
from tests.test_agent import VAULT, open_desk
from tests.test_runner import Installed, served

pytestmark = pytest.mark.office(dossier={"name": MARKERS["name"]}, doc=MARKERS["content"])


@pytest.fixture
def desk(office):
    with open_desk(office, Installed) as d:
        yield d


def _sh(desk: Installed, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``script`` run by sh with ``$@`` the vault command and ``args``, in the desk's environment."""
    return subprocess.run(["sh", "-c", script, "sh", *VAULT, *args], env=desk.env(**env), capture_output=True,
                          cwd=desk.cwd, timeout=60)


@pytest.mark.parametrize("redirect", ['exec "$@" <&-', 'exec "$@" >&-', 'exec "$@" 2>&-', 'exec "$@" <&- >&-'])
def test_a_closed_standard_stream_runs_as_it_does_without_the_runner(desk, redirect):
    desk.start()
    desk.runner()
    served(desk)
    for args in (["agent", "status"], ["--help"], ["dossier", "list"]):
        via = _sh(desk, redirect, *args)
        here = _sh(desk, redirect, *args, VAULT_RUNNER="0")
        assert b"Traceback" not in via.stderr + here.stderr, (redirect, args, via.stderr)
        assert (via.returncode, via.stdout, via.stderr) == (here.returncode, here.stdout, here.stderr), (redirect, args)


def test_descriptors_beyond_the_standard_streams_reach_the_command(desk):
    """A file named by a descriptor the client inherited — `/dev/fd/3` with `3<file`, `/proc/self/fd/N`,
    a link to `/dev/fd/N`, a shell's process substitution — is the same file in the command through the
    runner (here a document to add, or the passphrase file)."""
    desk.start()
    desk.runner()
    served(desk)
    data = os.urandom(2000) + b"\nthe end"
    (desk.root / "data.bin").write_bytes(data)
    (desk.cwd / "pass-link").symlink_to("/dev/fd/7")
    add = ["doc", "add", desk.office.number, "--category", "contract", "--source", "post", "--date", "2026-03-01",
           "--original"]
    pass_file = str(desk.office.root / "pass")
    for script, env in (
        ('"$@" /dev/fd/3 3<"$DATA"', {}),
        ('"$@" /proc/self/fd/5 5<"$DATA"', {}),
        ('exec "$@" /proc/$$/fd/6 6<"$DATA"', {}),  # the client's own pid, which is not the command's
        ('"$@" "$DATA" 7<"$PASS"', {"VAULT_PASSPHRASE_FILE": "pass-link", "who": "bob"}),  # a link to /dev/fd/7
        ('"$@" "$DATA" 3<"$PASS"', {"VAULT_PASSPHRASE_FILE": "/dev/fd/3", "who": "bob"}),
        ('VAULT_PASSPHRASE_FILE=<(cat "$PASS") "$@" "$DATA"', {"who": "bob"}),  # bash: /dev/fd/63, a pipe
    ):
        docs = []
        for runner in ("1", "0"):
            res = subprocess.run(["bash", "-c", script, "bash", *VAULT, *add], capture_output=True, cwd=desk.cwd,
                                 env=desk.env(**{"VAULT_RUNNER": runner, "DATA": str(desk.root / "data.bin"),
                                                 "PASS": pass_file, **env}), timeout=60)
            assert (res.returncode, res.stderr) == (0, b""), (script, runner, res.stderr)
            docs.append(res.stdout.decode().strip())
        for doc in docs:
            assert desk.run("doc", "view", doc).stdout == data, script
