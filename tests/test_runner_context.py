"""What a command through the runner takes from its client beyond arguments, environment and standard
streams: closed standard streams, other inherited descriptors, the client's namespaces, root and
scheduling. Whatever the runner cannot give the command as the client has it, the client keeps: the
command then runs in the ``vault`` process itself, with the same result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.office import MARKERS
from tests.test_agent import VAULT, open_desk
from tests.test_agent_process import new_cgroup
from tests.test_runner import HELP, SAME_SIZE, Installed, _ancestors, _wait_for_reader, served

pytestmark = pytest.mark.office(dossier={"name": MARKERS["name"]}, doc=MARKERS["content"])


@pytest.fixture
def desk(office):
    with open_desk(office, Installed) as d:
        yield d


def _sh(desk: Installed, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``script`` run by sh with ``$@`` the vault command and ``args``, in the desk's environment."""
    return subprocess.run(["sh", "-c", script, "sh", *VAULT, *args], env=desk.env(**env), capture_output=True,
                          cwd=desk.cwd, timeout=60)


def _unclocked(out: bytes) -> bytes:
    return re.sub(rb"\d+ s\b", b"N s", out)


@pytest.mark.parametrize("redirect", ['exec "$@" <&-', 'exec "$@" >&-', 'exec "$@" 2>&-', 'exec "$@" <&- >&-'])
def test_a_closed_standard_stream_runs_as_it_does_without_the_runner(desk, redirect):
    desk.start()
    desk.runner()
    served(desk)
    for args in (["agent", "status"], ["--help"], ["dossier", "list"], ["doc", "view", desk.office.doc]):
        via = _sh(desk, redirect, *args)
        here = _sh(desk, redirect, *args, VAULT_RUNNER="0")
        assert b"Traceback" not in via.stderr + here.stderr, (redirect, args, via.stderr)
        # (the agent's status counts its idle and lifetime seconds down: a second may pass between the two)
        assert (via.returncode, _unclocked(via.stdout), via.stderr) == \
            (here.returncode, _unclocked(here.stdout), here.stderr), (redirect, args)
        if args[0] == "doc" and " >&-" in redirect:  # nowhere to print the document: one line, no traceback
            assert here.returncode == 1 and here.stderr.startswith(b"vault: error: standard output is closed"), here.stderr


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


def _works(*wrapper: str) -> bool:
    try:
        return subprocess.run([*wrapper, "true"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


# Each runs the command in surroundings other than the runner's; unshare's need root or user namespaces.
ELSEWHERE = [
    ("unshare", "-m"), ("unshare", "-n"), ("unshare", "-u"), ("unshare", "-i"), ("unshare", "-C"), ("unshare", "-T"),
    ("unshare", "-p", "-f"), ("unshare", "-U", "--map-root-user"), ("setpriv", "--no-new-privs"),
    ("setpriv", "--inh-caps=-all", "--bounding-set=-net_raw"),
]


@pytest.mark.parametrize("wrapper", ELSEWHERE, ids=" ".join)
def test_a_client_in_other_surroundings_runs_the_command_itself(desk, wrapper):
    """A command started in another namespace, with other capabilities or no_new_privs runs in the
    `vault` process itself: a process of the runner would see the runner's files, network, host name
    and privileges instead of the client's."""
    if not _works(*wrapper):
        pytest.skip(f"{' '.join(wrapper)} is not permitted here (needs root or user namespaces)")
    desk.start()
    desk.runner()
    desk.edit_help(SAME_SIZE, keep_stat=True)  # what a process of its own shows, and the runner does not
    assert desk.help_shows() == HELP
    res = subprocess.run([*wrapper, *VAULT, "--help"], env=desk.env(), capture_output=True, text=True,
                         cwd=desk.cwd, timeout=60)
    assert res.returncode == 0 and SAME_SIZE in res.stdout, res.stderr


@pytest.mark.skipif(not _works("unshare", "-m"), reason="needs root or user namespaces for a mount namespace")
def test_a_file_mounted_in_the_clients_namespace_is_the_one_read(desk):
    """`unshare -m` with a file system mounted only there: the command reads the file the client sees."""
    desk.start()
    desk.runner()
    served(desk)
    hidden = desk.root / "hidden"
    hidden.mkdir()
    script = ('mount -t tmpfs none "$HIDDEN" && printf "only here" > "$HIDDEN/secret.txt" && '
              '"$@" "$HIDDEN/secret.txt"')
    res = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *VAULT, "doc", "add", desk.office.number,
                          "--category", "contract", "--source", "post", "--date", "2026-03-01", "--original"],
                         env=desk.env(HIDDEN=str(hidden)), capture_output=True, text=True, cwd=desk.cwd, timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert desk.run("doc", "view", res.stdout.strip()).stdout == b"only here"
    assert not (hidden / "secret.txt").exists()  # (outside that namespace there is no such file)


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("chroot"), reason="needs root to chroot")
def test_a_client_in_another_root_reads_its_own_files(desk):
    """A chroot into a bind of / (the same root inode as the runner's) with a file system mounted only
    under it: the command reads the file the client sees."""
    # Not under the desk, which is removed with everything in it: only rmdir'd once nothing is mounted.
    top = Path(tempfile.mkdtemp(prefix="vault-root-"))
    hidden = desk.root / "hidden"
    hidden.mkdir()
    if subprocess.run(["mount", "--rbind", "/", str(top)], capture_output=True).returncode != 0:
        top.rmdir()
        pytest.skip("cannot bind-mount / here")
    try:
        subprocess.run(["mount", "--make-rslave", str(top)], check=True)
        inside = top / hidden.relative_to("/")
        subprocess.run(["mount", "-t", "tmpfs", "none", str(inside)], check=True)
        (inside / "secret.txt").write_text("only under that root")
        desk.start()
        desk.runner()
        served(desk)
        res = subprocess.run(["chroot", str(top), *VAULT, "doc", "add", desk.office.number, str(hidden / "secret.txt"),
                              "--category", "contract", "--source", "post", "--date", "2026-03-01", "--original"],
                             env=desk.env(), capture_output=True, text=True, cwd="/", timeout=60)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        assert desk.run("doc", "view", res.stdout.strip()).stdout == b"only under that root"
        assert not (hidden / "secret.txt").exists()
    finally:
        subprocess.run(["umount", "-R", "-l", str(top)], check=True)
        top.rmdir()  # (fails, removing nothing, if anything is still there)


def test_a_client_in_another_cgroup_runs_the_command_itself(desk):
    """A command started in a cgroup of its own (systemd-run, a container's limits) runs in the `vault`
    process itself, in that cgroup, rather than in the runner's."""
    with new_cgroup() as group:
        if group is None:
            pytest.skip("cannot make a cgroup here (needs root or a delegated cgroup)")
        desk.start()
        desk.runner()
        desk.edit_help(SAME_SIZE, keep_stat=True)
        assert desk.help_shows() == HELP
        res = subprocess.run(["sh", "-c", 'echo $$ > "$GROUP/cgroup.procs" && exec "$@"', "sh", *VAULT, "--help"],
                             env=desk.env(GROUP=str(group)), capture_output=True, text=True, cwd=desk.cwd, timeout=60)
        assert res.returncode == 0 and SAME_SIZE in res.stdout, res.stderr


def _ioprio_of(pid: int) -> str:
    return subprocess.run(["ionice", "-p", str(pid)], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(not shutil.which("ionice") or not shutil.which("chrt"), reason="needs ionice and chrt")
@pytest.mark.parametrize("wrapper", [("ionice", "-c", "3"), ("ionice", "-c", "2", "-n", "7"), ("chrt", "-b", "0"),
                                     ("chrt", "-i", "0"), ("chrt", "-b", "0", "ionice", "-c", "3")], ids=" ".join)
def test_the_io_class_and_scheduling_policy_are_the_clients(desk, wrapper):
    """The command runs in the runner with the client's I/O class and scheduling policy, as nice and
    the CPU set are carried."""
    desk.start()
    runner = desk.runner()
    served(desk)
    r, w = os.pipe()
    try:
        p = subprocess.Popen([*wrapper, *VAULT, "doc", "add", desk.office.number, "-", "--category", "contract",
                              "--source", "post", "--date", "2026-03-01", "--original"], env=desk.env(), stdin=r,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=desk.cwd)
        os.close(r)
        reader = _wait_for_reader(os.fstat(w).st_ino)
        try:
            assert reader != p.pid and runner["pid"] in _ancestors(reader)  # in the runner
            assert _ioprio_of(reader) == _ioprio_of(p.pid)
            assert (os.sched_getscheduler(reader), os.sched_getparam(reader).sched_priority) == \
                (os.sched_getscheduler(p.pid), os.sched_getparam(p.pid).sched_priority)
        finally:
            os.write(w, b"a document")
            os.close(w)
            w = -1
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    finally:
        if w >= 0:
            os.close(w)


def test_the_clients_time_zone_path_is_used(desk):
    """PYTHONTZPATH (where Python's zoneinfo looks for zone files) is the client's in the runner too."""
    import zoneinfo

    desk.start()
    desk.runner()
    served(desk)
    tzpath = desk.root / "zones"
    (tzpath / "Office").mkdir(parents=True)
    source = next((Path(d) / "Asia" / "Shanghai" for d in zoneinfo.TZPATH if (Path(d) / "Asia" / "Shanghai").is_file()),
                  None)
    if source is None:
        pytest.skip("no system time zone database to copy a zone from")
    shutil.copyfile(source, tzpath / "Office" / "Desk")  # a zone only this path has
    args = ["--tz", "Office/Desk", "dossier", "list"]
    via = desk.run(*args, PYTHONTZPATH=str(tzpath))
    here = desk.run(*args, PYTHONTZPATH=str(tzpath), VAULT_RUNNER="0")
    assert here.returncode == 0, here.stderr
    assert (via.returncode, via.stdout, via.stderr) == (here.returncode, here.stdout, here.stderr)
    assert desk.run(*args).returncode == 1  # (without it, there is no such zone)
