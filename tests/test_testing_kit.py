"""The conformance kit: it passes the built-ins and the example plugin, and fails broken plugins saying why."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

pytest.register_assert_rewrite("vault.testing")

from vault.testing import ClassifierConformance, NumberingSchemeConformance, RecordingFacts  # noqa: E402

pytest_plugins = ["pytester", "vault.testing"]

EXAMPLE = Path(__file__).parent.parent / "examples" / "vault-checkdigit" / "vault_checkdigit.py"


def _example_module():
    """The example plugin's module: installed, or else loaded from its file so the kit is still exercised."""
    try:
        import vault_checkdigit
    except ImportError:
        spec = importlib.util.spec_from_file_location("vault_checkdigit", EXAMPLE)
        vault_checkdigit = importlib.util.module_from_spec(spec)
        sys.modules["vault_checkdigit"] = vault_checkdigit
        spec.loader.exec_module(vault_checkdigit)
    return vault_checkdigit


class TestBuiltinNumberingScheme(NumberingSchemeConformance):
    plugin = "numbering"
    options = [{}, {"pattern": "{year}{type}{seq:x}"}]


class TestBuiltinClassifier(ClassifierConformance):
    plugin = "classification"


class TestExampleCheckdigit(NumberingSchemeConformance):
    plugin = _example_module()


def test_recording_facts_refuses_and_remembers_undeclared_keys():
    facts = RecordingFacts({"dept": "sales", "business": "x"}, frozenset({"dept"}))
    assert facts["dept"] == "sales" and dict(facts) == {"dept": "sales"}
    assert facts.get("business") is None and facts.get("customer_name") is None
    assert facts.refused == {"business", "customer_name"} and facts.accessed == {"dept"}


def test_network_guard_allows_loopback_and_refuses_the_rest(vault_no_network):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=2).close()
    assert not vault_no_network.attempts
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)
    assert vault_no_network.attempts == ["('192.0.2.1', 80)"]
    vault_no_network.attempts.clear()  # the refusal was the point of this test


BROKEN = '''
import socket
from vault.hookspecs import hookimpl
from vault.testing import ClassifierConformance, NumberingSchemeConformance


def scheme(number, facts=frozenset({"customer_type", "business", "dept", "created"})):
    """A plugin object registering one numbering scheme whose number() is ``number``."""
    cls = type("Scheme", (), {"number": number, "facts": facts})

    class Plugin:
        @hookimpl
        def vault_register_numbering_schemes(self, register):
            register("example.com/broken", lambda options: cls())
    return Plugin()


def classifier(classify):
    cls = type("Classifier", (), {"classify": classify})

    class Plugin:
        @hookimpl
        def vault_register_classifiers(self, register):
            register("example.com/broken", lambda options: cls())
    return Plugin()


def counting(self, *, sequence, facts):
    self.calls = getattr(self, "calls", 0) + 1
    return f"N{sequence}-{self.calls}"


def own_counter(self, *, sequence, facts):
    type(self).issued = getattr(type(self), "issued", 0) + 1
    return f"N{type(self).issued}"


def calls_home(self, *, facts):
    try:
        socket.create_connection(("192.0.2.1", 443), timeout=0.1)
    except OSError:
        pass
    return "enterprise"


class TestReuses(NumberingSchemeConformance):
    plugin = scheme(lambda self, *, sequence, facts: f"N{sequence % 5000}")

class TestNotDeterministic(NumberingSchemeConformance):
    plugin = scheme(counting)

class TestBadCharacters(NumberingSchemeConformance):
    plugin = scheme(lambda self, *, sequence, facts: f"N {sequence}")

class TestTooLong(NumberingSchemeConformance):
    plugin = scheme(lambda self, *, sequence, facts: "N" * 60 + str(sequence))

class TestOwnCounter(NumberingSchemeConformance):
    plugin = scheme(own_counter)

class TestUndeclaredFact(NumberingSchemeConformance):
    plugin = scheme(lambda self, *, sequence, facts: f"{facts['dept']}{sequence}", facts=frozenset({"created"}))

class TestBadPath(ClassifierConformance):
    plugin = classifier(lambda self, *, facts: "Enterprise/Net Services")

class TestNosy(ClassifierConformance):
    plugin = classifier(lambda self, *, facts: facts.get("customer_name") or "enterprise")

class TestCallsHome(ClassifierConformance):
    plugin = classifier(calls_home)
'''


@pytest.fixture
def kit_pytester(pytester, monkeypatch):
    """A pytester whose inner runs load only the kit (installed pytest plugins would only slow them down)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["vault.testing"]')
    return pytester


def test_kit_fails_broken_plugins_saying_what_is_wrong(kit_pytester):
    pytester = kit_pytester
    pytester.makepyfile(test_broken=BROKEN)
    # -vv keeps each failure's message whole in the short summary, which is what is checked here.
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rfE", "-vv")
    result.stdout.fnmatch_lines_random([
        "FAILED *TestReuses::test_numbers_unique_across_sequences*duplicate archive number 'N1'*",
        "FAILED *TestNotDeterministic::test_deterministic*not deterministic: sequence * gave *",
        "FAILED *TestBadCharacters::test_numbers_are_valid*is not 1-64 printable ASCII*without whitespace*",
        "FAILED *TestTooLong::test_numbers_are_valid*is not 1-64 printable ASCII*",
        # A counter kept in the process passes with threads but not with processes, as in a real vault.
        "FAILED *TestOwnCounter::test_unique_under_concurrent_processes*duplicate archive number*",
        "FAILED *TestUndeclaredFact::test_sees_only_declared_facts*asked for facts it did not declare*['dept']*",
        "FAILED *TestBadPath::test_paths_are_valid*invalid class path*is not '/'-joined segments*",
        "FAILED *TestNosy::test_sees_only_declared_facts*asked for facts it did not declare*['customer_name']*",
        "ERROR *TestCallsHome::test_paths_are_valid*plugin code tried to reach the network: ('192.0.2.1', 443) (* attempts)",
    ])
    outcomes = result.parseoutcomes()
    # A broken plugin fails only the checks it breaks: the others still pass.
    assert outcomes["passed"] > 20 and outcomes["failed"] >= 10


def test_kit_says_when_no_plugin_is_named(kit_pytester):
    pytester = kit_pytester
    pytester.makepyfile(test_unnamed="""
        from vault.testing import NumberingSchemeConformance

        class TestMine(NumberingSchemeConformance):
            pass
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.stdout.fnmatch_lines(["*TestMine must set plugin = <module, object or entry-point name>*"])
    assert result.ret != 0
