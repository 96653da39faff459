"""The conformance kit's shared part: sample facts, the network guard, the sequence allocator, the base suite."""

from __future__ import annotations

import fcntl
import ipaddress
import random
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from vault import plugins
from vault.errors import ConflictError, PluginError
from vault.i18n import N_
from vault.store import index

#: Sequences every numbering scheme is tried with, besides 1..10,000: width changes and large values.
EDGE_SEQUENCES = (99_999, 100_000, 999_999, 1_000_000, 10**9)
_BUSINESSES = ("network services", "Software Development", "cloud-hosting", "Réseau & Télécom",
               "网络服务", "IT consulting (EU)", "x")


def sample_facts(count: int, *, seed: int = 7) -> list[dict[str, str]]:
    """Deterministic, varied classification facts: both customer types, odd businesses, years 1990-2099."""
    rng = random.Random(seed)
    return [{"customer_type": rng.choice(("enterprise", "individual")), "business": rng.choice(_BUSINESSES),
             "dept": rng.choice(("sales", "support", "Ops/EMEA")),
             "created": f"{rng.randint(1990, 2099):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}
            for _ in range(count)]


class RecordingFacts(Mapping[str, str]):
    """A read-only facts mapping that records which keys plugin code asked for, and refuses undeclared ones."""

    def __init__(self, facts: Mapping[str, str], allowed: frozenset[str]) -> None:
        self._facts = {k: v for k, v in facts.items() if k in allowed}
        self.accessed: set[str] = set()
        self.refused: set[str] = set()

    def __getitem__(self, key: str) -> str:
        if key not in self._facts:
            # Recorded as well as raised: plugin code that swallows the KeyError still fails the kit.
            self.refused.add(key)
            raise KeyError(key)
        self.accessed.add(key)
        return self._facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)


class SequenceAllocator:
    """Issues archive numbers through the vault's own function (``vault.store.index.allocate_number``).

    Each issue takes an exclusive ``flock``, then formats, commits and records the number exactly as
    the vault does (docs/FORMAT.md §11), refusing a number issued before; the counter, the issued
    numbers (each recorded with its sequence where the vault records a dossier id) and a log of the
    order live in ``directory``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        (self.directory / "index").mkdir(parents=True, exist_ok=True)
        self.issued = self.directory / "issued"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A fresh open file per call: flock excludes other open files, so threads contend too.
        with open(self.directory / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def issue(self, scheme: Any, facts: Mapping[str, str]) -> tuple[int, str]:
        """Allocate the next sequence and return it with the number ``scheme`` formats for it."""
        with self._locked():
            sequence = index.peek_sequence(self.directory)
            number = scheme.number(sequence=sequence, facts=facts)
            try:
                # The sequence stands in for the dossier id, written in an id's form (32 hex digits):
                # the vault refuses to read back an id of any other form.
                index.allocate_number(self.directory, lambda seq: number, f"{sequence:032x}")
            except ConflictError:
                first = int(index.lookup_number(self.directory, number) or "0", 16)
                raise AssertionError(f"duplicate archive number {number!r} for sequence {sequence}: "
                                     f"already issued for sequence {first}") from None
            with open(self.issued, "a") as log:
                log.write(number + "\n")
            return sequence, number

    def numbers(self) -> list[str]:
        """Every number issued so far, in order."""
        return self.issued.read_text().split("\n")[:-1] if self.issued.exists() else []


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like never leave the machine
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Refuses (and remembers) every connection plugin code tries to open beyond loopback."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def check(self, address: Any) -> None:
        """Raise if ``address`` is not loopback."""
        if not _is_loopback(address):
            self.attempts.append(repr(address))
            raise ConnectionRefusedError(f"vault.testing: network access to {address!r} is not allowed in a test")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Patch ``socket`` so that connections go through :meth:`check`."""
        guard = self
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_sendto, real_create = socket.socket.sendto, socket.create_connection

        def connect(sock: socket.socket, address: Any) -> Any:
            guard.check(address)
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            guard.check(address)
            return real_connect_ex(sock, address)

        def sendto(sock: socket.socket, data: bytes, *args: Any) -> Any:
            guard.check(args[-1])
            return real_sendto(sock, data, *args)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
            guard.check(address)  # before name resolution: a DNS query is itself a way out
            return real_create(address, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket.socket, "sendto", sendto)
        monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture
def vault_no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Fail the test if the code under test opens a network connection beyond loopback, even if it catches the error."""
    guard = NetworkGuard()
    guard.install(monkeypatch)
    yield guard
    if guard.attempts:
        where = ", ".join(sorted(set(guard.attempts)))
        pytest.fail(f"plugin code tried to reach the network: {where} ({len(guard.attempts)} attempts)", pytrace=False)


@pytest.fixture
def vault_allocator(tmp_path: Path) -> SequenceAllocator:
    """A vault-like sequence allocator with its lock and counter in ``tmp_path``."""
    return SequenceAllocator(tmp_path / "allocator")


def plugin_manager_for(plugin: object) -> plugins.VaultPluginManager:
    """A fresh manager holding only ``plugin``: an object with ``@hookimpl`` functions, or an entry-point name."""
    if isinstance(plugin, str):
        # Load through the installed entry point, so the kit also proves the packaging is right: from
        # the distributions' metadata itself, never the user's entry-point cache.
        pm = plugins.get_plugin_manager(environ={plugins.ALLOWLIST_ENV: plugin}, cache=False)
        for name in [n for n, _ in pm.list_name_plugin() if pm.is_builtin(n) and n != plugin]:
            pm.unregister(name=name)
        if not pm.has_plugin(plugin):
            raise PluginError(N_("no installed plugin has the entry-point name {plugin!r} in group 'vault'"), plugin=plugin)
        return pm
    pm = plugins.get_plugin_manager(entry_points=False)
    plugins.register_plugin(pm, plugin, name=getattr(plugin, "__name__", type(plugin).__name__))
    plugins.check_plugins(pm)
    return pm


class Conformance:
    """Base of the conformance suites: subclass one as ``Test...`` in your tests and set ``plugin``.

    To add a family, subclass this with ``family`` naming a registry function of :mod:`vault.plugins`
    (``"export_formats"``, ``"backup_targets"``, ...) and write ``test_*`` methods taking ``vault_case``,
    a ``(name, registration, options)`` triple; :func:`pytest_generate_tests` parametrises them.
    """

    #: The :mod:`vault.plugins` registry function of the family under test.
    family: ClassVar[str]
    #: The plugin under test: a module or object with ``@hookimpl`` functions, or an entry-point name.
    plugin: ClassVar[object] = None
    #: The names to test; ``None`` tests every name the plugin registers in the family.
    names: ClassVar[Sequence[str] | None] = None
    #: Option sets to build each registered thing with.
    options: ClassVar[Sequence[Mapping[str, Any]]] = ({},)

    @pytest.fixture(autouse=True)
    def _no_network(self, vault_no_network: NetworkGuard) -> None:
        """Every conformance test runs with the network guard."""

    @classmethod
    def cases(cls) -> list[tuple[str, plugins.Registration, Mapping[str, Any]]]:
        """The ``(name, registration, options)`` triples to test."""
        if cls.plugin is None:
            raise PluginError(N_("{name__} must set plugin = <module, object or entry-point name>"), name__=cls.__name__)
        registry = getattr(plugins, cls.family)(plugin_manager_for(cls.plugin))
        names = list(registry) if cls.names is None else list(cls.names)
        if not names:
            raise PluginError(N_("plugin {plugin!r} registers no {replace}"), plugin=cls.plugin, replace=cls.family.replace('_', ' '))
        missing = [n for n in names if n not in registry]
        if missing:
            raise PluginError(N_("plugin {plugin!r} does not register {missing}"), plugin=cls.plugin, missing=', '.join(missing))
        return [(name, registry[name], opts) for name in names for opts in cls.options]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every conformance test over the names and options its suite declares."""
    cls = metafunc.cls
    if cls is not None and issubclass(cls, Conformance) and "vault_case" in metafunc.fixturenames:
        cases = cls.cases()
        ids = [f"{name}-{i % len(cls.options)}" for i, (name, _, _) in enumerate(cases)]
        metafunc.parametrize("vault_case", cases, ids=ids)
