"""What a command through the runner takes from its client beyond arguments, environment and standard
streams: closed standard streams, other inherited descriptors, the client's namespaces, root and
scheduling. Whatever the runner cannot give the command as the client has it, the client keeps: the
command then runs in the ``vault`` process itself, with the same result."""

from __future__ import annotations

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
