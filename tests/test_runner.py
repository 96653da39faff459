"""The command runner beside the agent, as users meet it: real `vault agent start`, real runner and
client processes, real sockets, terminals and signals. A command gives the same bytes and exit status
through the runner as without it; the runner never holds a key, serves no other user, and is never
used by an installation or interpreter it was not started from."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import pytest

from tests.office import MARKERS, PASSPHRASE
from tests.test_agent import VAULT, Desk, alive, open_desk, wait_gone

REPO = Path(__file__).resolve().parent.parent
# A help line of the command table, and an edit of it of the same length and one of another length.
HELP = "Customer dossiers."
SAME_SIZE = "Customer DOSSIERS."
OTHER_SIZE = "Customer dossiers, edited."

pytestmark = pytest.mark.office(dossier={"name": MARKERS["name"]}, doc=MARKERS["content"])


class Installed(Desk):
    """A desk whose commands and runner import their own copy of the package (so that a test may
    change "the installation" without touching the repository), run from a directory of the desk."""

    def __init__(self, root: Path, office) -> None:
        super().__init__(root, office)
        self.lib = root / "lib"
        shutil.copytree(REPO / "vault", self.lib / "vault")
        self.cwd = root / "home"

    def env(self, who: str | None = "alice", passphrase: bool = False, **extra: str) -> dict[str, str]:
        return super().env(who, passphrase, **{"PYTHONPATH": str(self.lib), **extra})

    def run(self, *args: str, stdin: bytes | None = b"", cwd: Path | None = None, **env) -> subprocess.CompletedProcess:
        return subprocess.run([*VAULT, *args], env=self.env(**env), input=stdin, capture_output=True,
                              cwd=cwd or self.cwd, timeout=60)

    @property
    def runner_sock(self) -> Path:
        return self.sock.parent / (self.sock.name + ".runner")

    def runner(self) -> dict:
        """The runner's status, once it listens (it loads the command line after `agent start` returns)."""
        deadline = time.monotonic() + 30
        while True:
            st = json.loads(self.vault("agent", "status", "--json", who=None).stdout)
            if st["runner"] is not None or time.monotonic() > deadline:
                assert st["runner"] is not None, "no runner answered"
                self.pids.append(st["runner"]["pid"])
                return st["runner"]
            time.sleep(0.1)

    def edit_help(self, new: str, keep_stat: bool, old: str = HELP) -> None:
        """Change the help line in this installation (keeping its size and mtime when asked, which the
        fingerprint cannot see) and drop its byte-code, so a process that imports it afresh shows it."""
        f = self.lib / "vault" / "cli" / "lazy.py"
        st = f.stat()
        f.write_text(f.read_text().replace(old, new))
        if keep_stat:
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        for pyc in (f.parent / "__pycache__").glob("lazy.*.pyc"):
            pyc.unlink()

    def help_shows(self, **env) -> str:
        out = self.vault("--help", **env).stdout
        for text in (HELP, SAME_SIZE, OTHER_SIZE):
            if text in out:
                return text
        raise AssertionError(out)


@pytest.fixture
def desk(office):
    with open_desk(office, Installed) as d:
        yield d


def served(desk: Installed) -> None:
    """Prove that commands of this desk run in the runner: an edit the fingerprint cannot see (same
    size, same mtime) shows in a process of its own and not in the runner, which loaded the old text."""
    desk.edit_help(SAME_SIZE, keep_stat=True)
    assert desk.help_shows(VAULT_RUNNER="0") == SAME_SIZE
    assert desk.help_shows() == HELP
    desk.edit_help(HELP, keep_stat=True, old=SAME_SIZE)  # as it was: both ways say the same again


def test_the_runner_comes_and_goes_with_the_agent(desk):
    pid = desk.start()
    runner = desk.runner()
    assert runner["current"] and runner["pid"] != pid
    st_dir, st_sock = os.lstat(desk.sock.parent), os.lstat(desk.runner_sock)
    assert stat.S_IMODE(st_dir.st_mode) == 0o700 and st_dir.st_uid == os.getuid()
    assert stat.S_ISSOCK(st_sock.st_mode) and stat.S_IMODE(st_sock.st_mode) == 0o600
    # detached: its own session, no terminal, running from /
    assert os.getsid(runner["pid"]) == runner["pid"] and os.readlink(f"/proc/{runner['pid']}/cwd") == "/"
    desk.vault("agent", "stop", who=None)
    assert wait_gone(pid) and wait_gone(runner["pid"])
    assert not desk.sock.exists() and not desk.runner_sock.exists()


def test_the_runner_ends_when_the_agent_is_killed_or_times_out(desk):
    pid = desk.start()
    runner = desk.runner()
    os.kill(pid, signal.SIGKILL)  # no chance to say anything: the lifeline ends all the same
    assert wait_gone(pid) and wait_gone(runner["pid"]) and not desk.runner_sock.exists()
    # commands fall back to the passphrase, which is absent
    res = desk.vault("doc", "view", desk.office.doc, ok=False)
    assert res.returncode == 1 and res.stderr.startswith("vault: error: no passphrase available")
    pid = desk.start("--idle-timeout", "2s")
    runner = desk.runner()
    assert wait_gone(pid) and wait_gone(runner["pid"]) and not desk.runner_sock.exists()


def test_no_runner_when_asked(desk):
    pid = desk.start("--no-runner")
    time.sleep(1)
    assert json.loads(desk.vault("agent", "status", "--json", who=None).stdout)["runner"] is None
    assert not desk.runner_sock.exists() and alive(pid)


def _bytes_of(pid: int) -> bytes:
    """Every readable private or anonymous mapping of process ``pid`` (as root or as its own user)."""
    out = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
        for line in maps:
            addr, perms, *_rest = line.split()
            if not perms.startswith("r") or any(x in line for x in ("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            try:
                mem.seek(lo)
                out.append(mem.read(hi - lo))
            except (OSError, ValueError, OverflowError):
                continue
    return b"".join(out)


def test_the_runner_never_holds_the_identity(desk):
    """Not the agent's identity, nor one a command in it unlocked with its passphrase, nor a passphrase."""
    from vault.store import identity

    pid = desk.start()
    runner = desk.runner()
    served(desk)
    # a command in the runner that unlocks bob's identity with its passphrase, and one that uses the agent
    assert desk.vault("doc", "view", desk.office.doc, who="bob", passphrase=True).stdout == MARKERS["content"]
    assert desk.vault("doc", "view", desk.office.doc).stdout == MARKERS["content"]
    secrets = [PASSPHRASE.encode()]
    for who in ("alice", "bob"):
        ident = identity.load_identity(desk.office.ident(who), PASSPHRASE)
        for s in (ident.age_secret, ident.sign_secret):
            secrets += [s.encode(), s.lower().encode(), s.upper().encode()]
    # not in its environment either (the passphrase file's name is left out), and no file open
    environ = Path(f"/proc/{runner['pid']}/environ").read_bytes().split(b"\0")
    assert not [e for e in environ if e.startswith(b"VAULT_PASSPHRASE_FILE=")]
    for fd in os.listdir(f"/proc/{runner['pid']}/fd"):
        target = os.readlink(f"/proc/{runner['pid']}/fd/{fd}")
        assert target.startswith(("socket:", "pipe:", "/dev/null", "anon_inode:")), target
    assert alive(pid)
    try:
        memory = _bytes_of(runner["pid"])
    except PermissionError:  # Yama's ptrace_scope 1: only a parent may read a process's memory
        pytest.skip("this kernel lets only root or a parent read another process's memory")
    assert str(desk.runner_sock).encode() in memory  # the reading works: what it does hold is found
    assert not [s[:24] for s in secrets if s in memory]


def test_a_stale_runner_is_never_used(desk):
    desk.start()
    assert desk.runner()["current"]
    desk.edit_help(OTHER_SIZE, keep_stat=False)  # the installation changed after the runner started
    assert desk.help_shows() == OTHER_SIZE
    assert not desk.runner()["current"]


def test_another_interpreter_configuration_runs_the_command_itself(desk):
    desk.start()
    desk.runner()
    desk.edit_help(SAME_SIZE, keep_stat=True)  # what a process of its own shows, and the runner does not
    assert desk.help_shows() == HELP
    for flags, env in ((["-X", "importtime"], {}), (["-W", "error"], {}), ([], {"PYTHONSAFEPATH": "1"}),
                       ([], {"PYTHONIOENCODING": "latin-1"}), ([], {"PYTHONUNBUFFERED": "1"})):
        res = subprocess.run([sys.executable, *flags, "-m", "vault", "--help"], env=desk.env(**env),
                             capture_output=True, text=True, cwd=desk.root / "home", timeout=60)
        if env.get("PYTHONIOENCODING") or env.get("PYTHONUNBUFFERED"):
            # the streams' encoding and buffering are the client's own in the runner too
            assert res.returncode == 0 and HELP in res.stdout, env
            continue
        assert res.returncode == 0 and SAME_SIZE in res.stdout, (flags, env)


def test_commands_give_the_same_bytes_through_the_runner(desk):
    desk.start()
    desk.runner()
    served(desk)
    vault_dir = desk.office.vault_dir
    number = desk.office.number
    cases: list[tuple[list[str], dict, bytes]] = [
        (["--help"], {}, b""),
        (["doc", "--help"], {}, b""),
        (["find", MARKERS["name"].split()[0]], {}, b""),
        (["find", "--json", MARKERS["name"].split()[0]], {}, b""),
        (["find", "nothing-matches-this"], {}, b""),  # exit 1
        (["doc", "view", desk.office.doc], {}, b""),
        (["dossier", "list"], {}, b""),
        (["dossier", "list", "--json"], {}, b""),
        (["doc", "view", number + "/9999"], {}, b""),  # an error: one line, a hint, exit 1
        (["doc", "view", number + "/9999", "--json"], {}, b""),
        (["dossier", "frobnicate"], {}, b""),  # a usage error: exit 2
        (["doc", "view", desk.office.doc], {"VAULT_LANG": "zh_CN"}, b""),
        (["doc", "view", number + "/9999"], {"VAULT_LANG": "zh_CN"}, b""),
        (["dossier", "list"], {"TZ": "Asia/Shanghai"}, b""),
        (["--vault", ".", "dossier", "list"], {"cwd": str(vault_dir)}, b""),  # the client's directory
        (["doc", "view", desk.office.doc], {"who": "bob", "passphrase": True}, b""),  # not the agent's identity
        (["doc", "view", desk.office.doc], {"who": "bob"}, b""),  # ... and no passphrase: exit 1
        (["--version"], {"who": None}, b""),
        (["policy", "show"], {}, b"ignored input"),
    ]
    for args, env, stdin in cases:
        env = dict(env)
        cwd = Path(env.pop("cwd")) if "cwd" in env else None
        via = desk.run(*args, stdin=stdin, cwd=cwd, **env)
        here = desk.run(*args, stdin=stdin, cwd=cwd, VAULT_RUNNER="0", **env)
        label = " ".join(args)
        assert (via.returncode, via.stdout, via.stderr) == (here.returncode, here.stdout, here.stderr), label
        assert b"Traceback" not in via.stderr, label
    codes = {" ".join(a): desk.run(*a, **{k: v for k, v in e.items() if k != "cwd"}).returncode
             for a, e, _ in cases[4:11]}
    assert sorted(set(codes.values())) == [0, 1, 2]  # the cases do cover errors and usage errors


def test_a_command_reading_standard_input_and_writing_files(desk):
    desk.start()
    desk.runner()
    served(desk)
    number = desk.office.number
    data = os.urandom(3000) + b"\n\0the end"
    add = ["doc", "add", number, "-", "--category", "contract", "--source", "post", "--date", "2026-03-01",
           "--original", "--filename", "scan.bin"]
    via, here = desk.run(*add, stdin=data), desk.run(*add, stdin=data, VAULT_RUNNER="0")
    assert via.returncode == here.returncode == 0 and via.stderr == here.stderr
    docs = [via.stdout.decode().strip(), here.stdout.decode().strip()]
    assert re.fullmatch(r".+/\d{4}", docs[0]) and docs[0] != docs[1]
    for doc in docs:
        out = desk.root / "home" / f"{doc.replace('/', '-')}.out"
        res = desk.run("doc", "view", doc, "--output", out.name)  # relative: the client's directory
        assert res.returncode == 0, res.stderr
        assert out.read_bytes() == data and stat.S_IMODE(out.stat().st_mode) == 0o600


def _syscall_reading_stdin(pid: int) -> bool:
    read = {"x86_64": 0, "aarch64": 63}.get(os.uname().machine)
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return read is not None and fields[:2] == [str(read), "0x0"]


def _wait_for_reader(pipe_ino: int, timeout: float = 60) -> int:
    """The pid of the process blocked reading the pipe ``pipe_ino`` on its standard input."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{p}/fd/0") != f"pipe:[{pipe_ino}]":
                    continue
            except OSError:
                continue
            if _syscall_reading_stdin(int(p)):
                return int(p)
        time.sleep(0.05)
    raise AssertionError("nobody reads the pipe")


def _interrupted(desk: Installed, sig: int, **env) -> tuple[subprocess.CompletedProcess, int, list[int]]:
    """Interrupt a command blocked reading its input; return how it ended, the pid of the process that
    was reading and that process's ancestors (pids)."""
    add = ["doc", "add", desk.office.number, "-", "--category", "contract", "--source", "post", "--date",
           "2026-03-01", "--original"]
    r, w = os.pipe()
    try:
        p = subprocess.Popen(["nice", "-n", "3", *VAULT, *add], env=desk.env(**env), stdin=r, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=desk.root / "home")
        os.close(r)
        os.write(w, b"part of a document")
        reader = _wait_for_reader(os.fstat(w).st_ino)
        parents = _ancestors(reader)
        assert os.getpriority(os.PRIO_PROCESS, reader) == os.getpriority(os.PRIO_PROCESS, 0) + 3  # the client's
        os.kill(p.pid, sig)
        out, err = p.communicate(timeout=60)
    finally:
        os.close(w)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), reader, [p.pid, *parents]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_reach_the_command(desk, sig):
    desk.start()
    runner = desk.runner()
    served(desk)
    before = desk.vault("doc", "list", desk.office.number).stdout
    via, reader, (client, *parents) = _interrupted(desk, sig)
    assert reader != client and runner["pid"] in parents  # the command ran in the runner
    here, reader, (client, *parents) = _interrupted(desk, sig, VAULT_RUNNER="0")
    assert reader == client
    assert (via.returncode, via.stdout, via.stderr) == (here.returncode, here.stdout, here.stderr)
    assert via.returncode == (130 if sig == signal.SIGINT else -sig)
    assert desk.vault("doc", "list", desk.office.number).stdout == before  # nothing was added
    assert alive(runner["pid"])


def _ancestors(pid: int) -> list[int]:
    """The parents of ``pid``, nearest first."""
    out = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.append(pid)
    return out


def test_a_crashing_command_leaves_the_runner_serving(desk):
    desk.start()
    runner = desk.runner()
    served(desk)
    r, w = os.pipe()
    try:
        p = subprocess.Popen([*VAULT, "doc", "add", desk.office.number, "-", "--category", "contract", "--source",
                              "post", "--date", "2026-03-01", "--original"], env=desk.env(), stdin=r,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=desk.root / "home")
        os.close(r)
        reader = _wait_for_reader(os.fstat(w).st_ino)
        os.kill(reader, signal.SIGKILL)  # the command dies as if it had crashed
        p.communicate(timeout=60)
    finally:
        os.close(w)
    assert p.returncode == -signal.SIGKILL  # the client dies the same way, for whoever waits for it
    assert alive(runner["pid"])
    served(desk)  # and the runner still serves


def _on_a_terminal(argv: list[str], env: dict[str, str], typed: bytes, cwd: Path) -> bytes:
    """Run ``argv`` with a new terminal as its controlling terminal and all three standard streams;
    type ``typed`` once it asks; return what the terminal showed."""
    master, slave = pty.openpty()

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, preexec_fn=take_terminal)
    os.close(slave)
    shown, sent = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
        if not sent and b"Passphrase for" in shown:
            time.sleep(0.2)  # the terminal's echo is turned off after the prompt is written
            os.write(master, typed)
            sent = True
    p.wait(timeout=60)
    os.close(master)
    return shown


def test_a_passphrase_prompt_works_on_the_terminal(desk):
    desk.start()
    desk.runner()
    served(desk)
    shows = [_on_a_terminal([*VAULT, "doc", "view", desk.office.doc], desk.env(who="bob", **extra),
                            PASSPHRASE.encode() + b"\n", desk.root / "home") for extra in ({}, {"VAULT_RUNNER": "0"})]
    assert shows[0] == shows[1]
    assert shows[0].startswith(b"Passphrase for bob.key:") and MARKERS["content"].encode() in shows[0]
    assert PASSPHRASE.encode() not in shows[0]  # not echoed


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root to run a process as nobody")
def test_another_user_is_refused_both_ways(desk):
    """Nobody's process gets no answer from the runner (even through a reachable name of its socket), and
    a runner socket of another user is never given a command."""
    desk.start()
    runner = desk.runner()
    shared = Path(tempfile.mkdtemp(prefix="vs-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        os.link(desk.runner_sock, shared / "r.sock")
        os.chmod(shared / "r.sock", 0o666)
        probe = ("import socket\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\n"
                 f"s.connect({str(shared / 'r.sock')!r})\n"
                 "try:\n s.sendall(b'\\0\\0\\0\\4\\0\\0\\0\\0'); d=s.recv(100)\nexcept OSError: d=b''\n"
                 "print('answer' if d else 'refused')")
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                              "-c", probe], capture_output=True, text=True, timeout=30, cwd="/")
        assert res.returncode == 0 and res.stdout.strip() == "refused", res.stderr
        assert alive(runner["pid"])
        # a "runner" of nobody's, where VAULT_AGENT_SOCK leads: it is sent nothing
        (shared / "n").mkdir()
        os.chown(shared / "n", 65534, 65534)
        fake = ("import socket,os,sys\ns=socket.socket(socket.AF_UNIX)\n"
                f"s.bind({str(shared / 'n' / 'x.sock.runner')!r})\nos.chmod({str(shared / 'n' / 'x.sock.runner')!r}, 0o666)\n"
                "s.listen(4)\nprint('up', flush=True)\ns.settimeout(20)\nc,_=s.accept()\nc.settimeout(5)\n"
                "try:\n d=c.recv(100)\nexcept OSError: d=b''\nprint('got', len(d), flush=True)")
        p = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                              "-c", fake], stdout=subprocess.PIPE, text=True, cwd="/")
        assert p.stdout.readline().strip() == "up"
        res = desk.vault("--help", VAULT_AGENT_SOCK=str(shared / "n" / "x.sock"))
        assert HELP in res.stdout  # run by the client itself (the desk's runner would have said the same)
        assert p.stdout.readline().strip() == "got 0"
        p.wait(timeout=30)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_request_from_a_stranger_process_is_only_ever_answered_no(desk):
    """A same-user process that talks nonsense, hangs up, or sends a request of another installation
    gets "N" or nothing, and the runner keeps serving."""
    desk.start()
    runner = desk.runner()
    for payload in (b"", b"\0\0\0\x05hello", b"\xff\xff\xff\xff" + b"x" * 100,
                    b"\0\0\0\x1a\0\0\0\x02\0\0\0\x0evault-runner-1\0\0\0\x03run"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(40)
        s.connect(str(desk.runner_sock))
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        try:
            answer = s.recv(10)
        except OSError:
            answer = b""
        s.close()
        assert answer in (b"", b"N"), payload
    assert alive(runner["pid"]) and desk.runner()["current"]


@pytest.mark.parametrize("env", [{}, {"XDG_RUNTIME_DIR": "/run/user/1000"}, {"XDG_RUNTIME_DIR": "relative"},
                                 {"TMPDIR": "/var/tmp"}, {"VAULT_AGENT_SOCK": "/somewhere/a.sock"}])
def test_the_entry_point_looks_where_the_agent_is(monkeypatch, env):
    from vault import launch
    from vault.agent import paths

    for var in ("XDG_RUNTIME_DIR", "TMPDIR", "VAULT_AGENT_SOCK"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert launch.agent_socket() == str(paths.socket_path())


def test_the_desk_commands_find_their_modules_loaded(desk):
    """What `doc view`, `dossier list` and `find` import is loaded by the runner already (else each
    command through it would import it again: slower, never wrong)."""
    probe = ("import importlib, os, sys\nfrom vault.cli import runner\nrunner._preload()\nbefore = set(sys.modules)\n"
             "sys.argv = ['vault', *sys.argv[1:]]\nfrom vault.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in set(sys.modules) - before if m.startswith('vault')), file=sys.stderr)")
    for args in (["doc", "view", desk.office.doc], ["dossier", "list"], ["find", MARKERS["name"].split()[0]]):
        res = subprocess.run([sys.executable, "-c", probe, *args], env=desk.env(passphrase=True), capture_output=True,
                             text=True, cwd=desk.root / "home", timeout=60)
        assert res.returncode == 0, res.stderr
        assert res.stderr.strip().splitlines()[-1] == "[]", (args, res.stderr)
