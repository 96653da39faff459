"""The conformance kit: it passes the built-ins and the example plugin, and fails broken plugins saying why."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

pytest.register_assert_rewrite("vault.testing")

from vault.crypto import age  # noqa: E402
from vault.testing import (BackupTargetConformance, ClassifierConformance, ExporterConformance,  # noqa: E402
                           NumberingSchemeConformance, RecordingFacts)

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


class TestBuiltinCatalogues(ExporterConformance):
    plugin = "exports"
    names = ["json", "csv", "bagit"]


class TestBuiltinAgeBundle(ExporterConformance):
    plugin = "exports"
    names = ["age"]
    options = [{"recipients": [age.recipient_of(age.generate_identity("x25519"))]},
               {"recipients": [age.recipient_of(age.generate_identity("mlkem768x25519"))]}]


class TestBuiltinFileTarget(BackupTargetConformance):
    plugin = "targets"
    names = ["file"]

    @pytest.fixture
    def target_url(self, tmp_path):
        return (tmp_path / "target").as_uri()


BROKEN_EXPORTS = '''
import io
import json
import os
import time
from pathlib import Path

import pytest

from vault.hookspecs import hookimpl
from vault.testing import BackupTargetConformance, ExporterConformance


def exporter(cls):
    """A plugin object registering one export format built from ``cls``."""
    class Plugin:
        @hookimpl
        def vault_register_export_formats(self, register):
            register("example.com/broken", lambda options: cls())
    return Plugin()


class Remembers:
    """Keeps the titles it was shown, and writes them for the next caller too."""
    kind, suffix, reads = "file", ".txt", frozenset({"sealed"})
    titles = []

    def export(self, *, dossier, documents, dest, **kwargs):
        type(self).titles += [doc.meta()["title"] for doc in documents if doc.readable]
        dest.write("\\\\n".join(type(self).titles).encode())


class CachesInVault:
    kind, suffix, reads = "file", ".json", frozenset()

    def export(self, *, dossier, documents, dest, **kwargs):
        Path(os.environ["VAULT_DIR"], "export-cache.json").write_text(json.dumps(dict(dossier)))
        dest.write(b"{}")


class Stamped:
    kind, suffix, reads = "file", ".csv", frozenset()

    def export(self, *, dossier, documents, dest, **kwargs):
        dest.write(f"exported at {time.time_ns()}".encode())


class Undeclared:
    kind, suffix, reads = "file", ".txt", frozenset({"sealed"})

    def export(self, *, dossier, documents, dest, **kwargs):
        for doc in documents:
            dest.write(doc.open().read())


class BadKind:
    kind, suffix, reads = "zip", ".zip", frozenset()

    def export(self, *, dossier, documents, dest, **kwargs):
        pass


class HalfWritten:
    """Writes in place (a cut leaves half an object) and raises KeyError for a missing name."""
    stores = {}

    def __init__(self, url):
        self.objects = self.stores.setdefault(url, {})

    def put(self, name, data, create_only=False):
        if create_only and name in self.objects:
            return
        self.objects[name] = b""
        while block := data.read(65536):
            self.objects[name] += block

    def get(self, name):
        return io.BytesIO(self.objects[name])

    def exists(self, name):
        return name in self.objects

    def list(self, prefix=""):
        return [n for n in self.objects if n.startswith(prefix)]

    def delete(self, name):
        del self.objects[name]


class TargetPlugin:
    @hookimpl
    def vault_register_backup_targets(self, register):
        register("com.example.memory", HalfWritten)


class TestRemembers(ExporterConformance):
    plugin = exporter(Remembers)

class TestCachesInVault(ExporterConformance):
    plugin = exporter(CachesInVault)

class TestStamped(ExporterConformance):
    plugin = exporter(Stamped)

class TestUndeclared(ExporterConformance):
    plugin = exporter(Undeclared)

class TestBadKind(ExporterConformance):
    plugin = exporter(BadKind)

class TestHalfWritten(BackupTargetConformance):
    plugin = TargetPlugin()

    @pytest.fixture
    def target_url(self, tmp_path):
        return f"com.example.memory://{tmp_path.name}"

class TestNoUrl(BackupTargetConformance):
    plugin = TargetPlugin()
'''


def test_kit_fails_broken_exporters_and_targets_saying_what_is_wrong(kit_pytester):
    pytester = kit_pytester
    pytester.makepyfile(test_broken_exports=BROKEN_EXPORTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rfE", "-vv")
    # "?" stands for "[" and "]", which fnmatch would read as a character class.
    result.stdout.fnmatch_lines_random([
        "FAILED *TestRemembers::test_no_plaintext_for_a_non_reader*wrote what the caller may not read: ?'title'?*",
        "FAILED *TestCachesInVault::test_exports_for_a_reader*wrote inside the vault directory: added export-cache.json*",
        "FAILED *TestStamped::test_catalogue_is_deterministic*not deterministic for a reader*",
        "FAILED *TestUndeclared::test_exports_for_a_reader*failed for a reader granted ?'sealed'?*"
        "PermissionDeniedError*not given the content*",
        "FAILED *TestBadKind::test_declarations*has kind 'zip', not one of file, directory*",
        "FAILED *TestHalfWritten::test_survives_interrupted_put*damaged the object it replaced*",
        "FAILED *TestHalfWritten::test_delete*get of a missing name raised KeyError, not NotFoundError*",
        "ERROR *TestNoUrl::test_round_trip*must define a target_url fixture*",
    ])
    outcomes = result.parseoutcomes()
    # Each broken plugin fails only the checks it breaks.
    assert outcomes["passed"] >= 15 and outcomes["failed"] >= 7
