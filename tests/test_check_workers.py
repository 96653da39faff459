"""``vault check`` in worker processes: the same report as on threads, the cache kept, workers that
die named, and the agent's connection never shared with a forked worker."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time

import pytest

from vault.agent import client
from vault.archive import checkcache
from vault.archive.manifests import load_manifest, resolve
from vault.archive.vault import Vault
from vault.errors import VaultError
from vault.office import check as checker, checkdocs
from vault.store import identity

from office import PASSPHRASE
from test_agent import alive, open_desk


#: Worker processes are forked one per core and never on one core (a check there runs on threads).
pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no worker processes, by design")


@pytest.fixture
def office(office, tmp_path):
    """Four dossiers of three documents each."""
    o = office
    o.numbers = [o.create(name=f"Worker Customer {i}") for i in range(4)]
    for k, no in enumerate(o.numbers):
        for i in range(3):
            f = tmp_path / f"d{k}-{i}.txt"
            f.write_bytes(f"document {k}/{i}\n".encode() * (500 + 9000 * i))
            o.add_doc(no, f)
    return o


def _run(office, monkeypatch, *, forked: bool, read_data: bool) -> checker.Report:
    """A check on threads or in worker processes; asserts which one ran."""
    monkeypatch.setattr(checker, "_FORK_MIN", 1 if forked else 10**9)
    started = []
    real = checker._start_workers

    def spy(*args):
        started.append(f := real(*args))
        return f

    monkeypatch.setattr(checker, "_start_workers", spy)
    v = Vault.open(office.vault_dir)
    actor = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE)) if read_data else None
    rep = checker.check(v, actor=actor)
    assert (started[0] is not None) == forked
    return rep


def _damage(office) -> None:
    """A flipped byte in two documents, a manifest edited, a stray file in a documents directory."""
    v = Vault.open(office.vault_dir)
    for no in office.numbers[1:3]:
        m = load_manifest(v, resolve(v, no))
        p = v.layout.document(m.id, m.documents[-1].id)
        data = bytearray(p.read_bytes())
        data[-30] ^= 1
        p.write_bytes(bytes(data))
    m = load_manifest(v, resolve(v, office.numbers[3]))
    mp = v.root / "dossiers" / m.id / "manifest.toml"
    mp.write_bytes(mp.read_bytes().replace(b"Worker", b"Wrker", 1) + b"\n")
    first = load_manifest(v, resolve(v, office.numbers[0]))
    (v.root / "dossiers" / first.id / "documents" / "stray.age").write_bytes(b"x")


@pytest.mark.parametrize("read_data", [False, True], ids=["no-key", "read-data"])
def test_workers_give_the_report_threads_give(office, monkeypatch, read_data):
    clean = _run(office, monkeypatch, forked=True, read_data=read_data)
    assert clean.ok and clean.counts["documents"] == 12 and clean.counts["dossiers"] == 4
    _damage(office)
    on_threads = _run(office, monkeypatch, forked=False, read_data=read_data)
    in_workers = _run(office, monkeypatch, forked=True, read_data=read_data)
    assert len(on_threads.problems) >= 3 and on_threads.notes
    assert in_workers.as_dict() == on_threads.as_dict()
    # the findings crossed the pipe as messages, not bare text: they still render in any language
    assert [p.msgid for p in in_workers.problems] == [p.msgid for p in on_threads.problems]
    assert [p.params for p in in_workers.problems] == [p.params for p in on_threads.problems]


def test_what_workers_verified_is_remembered(office, monkeypatch):
    monkeypatch.setattr(checkcache, "_RACY_NS", 0)  # (files written just now are remembered too)
    first = _run(office, monkeypatch, forked=True, read_data=False)
    assert first.ok and first.counts["unchanged"] == 0
    again = _run(office, monkeypatch, forked=False, read_data=False)
    assert again.ok and again.counts["unchanged"] == again.counts["documents"] == 12


def _die(task):
    os._exit(3)


def test_a_worker_that_dies_is_named_not_waited_for(office, monkeypatch):
    monkeypatch.setattr(checker, "_in_worker", _die)
    with pytest.raises(VaultError, match="a worker process stopped before it finished"):
        _run(office, monkeypatch, forked=True, read_data=False)


def test_a_forked_process_talks_to_the_agent_on_its_own_connection(office):
    with open_desk(office) as desk:
        desk.start()
        c = client.connect(desk.sock)
        assert c is not None
        parent_fd = c._sock.fileno()
        assert c.call("hello")["ok"]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one request, on a connection of its own
            try:
                ok = c.call("hello")["ok"] and c._sock.fileno() != parent_fd
                os.write(w, b"1" if ok else b"0")
            finally:
                os._exit(0)
        os.close(w)
        assert os.read(r, 1) == b"1"
        os.waitpid(pid, 0)
        for _ in range(3):  # the parent's stream was not touched: its answers are still its own
            assert c.call("hello")["ok"]
        c.close()


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out |= {int(x) for x in f.read().split()}
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_do_not_outlive_a_check_that_is_killed(office):
    """The command killed outright (SIGKILL: nothing of it runs after) while its workers are busy:
    they go with it, none is left holding the vault's files or the unlocked keys."""
    pid = os.fork()
    if pid == 0:  # the command: its workers get documents that take a minute each
        try:
            checker._FORK_MIN = 1
            checkdocs.check_document = lambda *args: time.sleep(60)
            checker.check(Vault.open(office.vault_dir))
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 30
        while len(workers := _children(pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) >= 2
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if alive(w)]
    for w in left:  # (a failure leaves none behind either)
        os.kill(w, signal.SIGKILL)
    assert not left


def test_no_process_to_be_had_means_threads(office, monkeypatch):
    """fork refused (a process limit reached, no memory): the check runs on threads, whole."""
    import multiprocessing.popen_fork

    launch = multiprocessing.popen_fork.Popen._launch
    started = []

    def second_refused(self, process_obj):  # the first worker starts, the second is refused
        if started:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        launch(self, process_obj)
        started.append(self.pid)

    monkeypatch.setattr(multiprocessing.popen_fork.Popen, "_launch", second_refused)
    monkeypatch.setattr(checker, "_FORK_MIN", 1)
    rep = checker.check(Vault.open(office.vault_dir))
    assert rep.ok and rep.counts["documents"] == 12
    assert len(started) == 1 and not alive(started[0])  # the one that started is not left waiting


def test_no_key_crosses_the_pipe_to_or_from_a_worker(office, monkeypatch):
    """With ``--read-data`` the workers open every key table themselves (they inherit the unlocked
    identities): what is sent to them, and what they send back, holds no file key of any table."""
    from vault.archive.manifests import read_table
    from vault import forked as checkworkers

    sent, received = [], []
    start, take = checkworkers.Forked.start.__func__, checkworkers.Forked.next

    def start_spy(cls, fn, tasks, inherit, **kw):
        sent.append(pickle.dumps(list(tasks)))
        return start(cls, fn, tasks, inherit, **kw)

    def next_spy(self):
        got = take(self)
        received.append(pickle.dumps(got))
        return got

    monkeypatch.setattr(checkworkers.Forked, "start", classmethod(start_spy))
    monkeypatch.setattr(checkworkers.Forked, "next", next_spy)
    rep = _run(office, monkeypatch, forked=True, read_data=True)
    assert rep.ok and len(received) == 4
    v = Vault.open(office.vault_dir)
    ids = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE)).read_identities()
    keys = [k for no in office.numbers for k in read_table(v, resolve(v, no), ids).keys.values()]
    assert len(keys) >= 12
    for blob in sent + received:
        assert not any(k in blob or k.hex().encode() in blob for k in keys)
