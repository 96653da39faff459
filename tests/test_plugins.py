"""The plugin system: entry-point loading, the allowlist, registries and errors that name the plugin."""

from __future__ import annotations

import ast
import inspect
import io
import re
import sys
import textwrap
from pathlib import Path

import pytest

from vault import hookspecs, plugins
from vault.errors import PluginError
from vault.hookspecs import hookimpl

FACTS = {"customer_type": "enterprise", "business": "Network Services", "dept": "sales", "created": "2026-03-01"}


@pytest.fixture
def pm() -> plugins.VaultPluginManager:
    """A fresh manager with the built-ins only, so an installed third-party plugin cannot interfere."""
    return plugins.get_plugin_manager(environ={plugins.ALLOWLIST_ENV: ""})


@pytest.fixture
def bare_pm() -> plugins.VaultPluginManager:
    """A fresh manager with the hook specs and no plugin at all."""
    return plugins.get_plugin_manager(entry_points=False)


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a throwaway distribution with one ``vault`` entry point, by putting it on sys.path."""
    modules: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(dist: str, module: str, source: str, *, entry_point: str | None = None) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[vault]\n{entry_point or module} = {module}\n")
        modules.append(module)

    yield make
    for module in modules:
        sys.modules.pop(module, None)


GOOD_PLUGIN = """
    from vault.hookspecs import hookimpl

    @hookimpl
    def vault_register_notifiers(register):
        register("example.com/log", lambda options: None)
"""


def test_get_plugin_manager_is_fresh_each_time():
    assert plugins.get_plugin_manager() is not plugins.get_plugin_manager()


def test_builtins_load_through_entry_points(pm):
    import vault_plugins.classification
    import vault_plugins.numbering

    assert pm.get_plugin("numbering") is vault_plugins.numbering
    assert pm.get_plugin("classification") is vault_plugins.classification
    assert pm.is_builtin("numbering") and pm.sources["numbering"].entry_point == "vault_plugins.numbering"


def test_allowlist_unset_loads_every_installed_plugin(make_dist):
    make_dist("vault-testplug", "vault_testplug_a", GOOD_PLUGIN)
    assert plugins.get_plugin_manager(environ={}).has_plugin("vault_testplug_a")


def test_allowlist_empty_loads_builtins_only(make_dist):
    make_dist("vault-testplug", "vault_testplug_b", GOOD_PLUGIN)
    pm = plugins.get_plugin_manager(environ={plugins.ALLOWLIST_ENV: ""})
    assert not pm.has_plugin("vault_testplug_b")
    assert {row["name"] for row in plugins.describe_plugins(pm) if row["builtin"]} >= {"numbering", "classification"}


@pytest.mark.parametrize("allow", ["vault-testplug", "Vault_TestPlug", "vault_testplug_c", " vault-testplug , "])
def test_allowlist_names_a_distribution_or_entry_point(make_dist, allow):
    make_dist("vault-testplug", "vault_testplug_c", GOOD_PLUGIN)
    pm = plugins.get_plugin_manager(environ={plugins.ALLOWLIST_ENV: allow})
    assert pm.has_plugin("vault_testplug_c") and pm.has_plugin("numbering")


def test_allowlist_leaves_out_unlisted_plugins(make_dist):
    make_dist("vault-testplug", "vault_testplug_d", GOOD_PLUGIN)
    make_dist("vault-otherplug", "vault_otherplug_d", GOOD_PLUGIN.replace("example.com/log", "example.com/other"))
    pm = plugins.get_plugin_manager(environ={plugins.ALLOWLIST_ENV: "vault-otherplug"})
    assert not pm.has_plugin("vault_testplug_d") and pm.has_plugin("vault_otherplug_d") and pm.has_plugin("classification")


@pytest.mark.parametrize("allow", ["something-else", " other , vault-testplug"])
def test_allowlist_entry_that_names_no_plugin_is_an_error(make_dist, allow):
    """A misspelt allowlist entry must not silently run the office without the plugin it meant."""
    make_dist("vault-testplug", "vault_testplug_e", GOOD_PLUGIN)
    with pytest.raises(PluginError, match="names no installed plugin: (something-else|other)$"):
        plugins.get_plugin_manager(environ={plugins.ALLOWLIST_ENV: allow})


def test_misspelled_hook_fails_naming_the_plugin(make_dist):
    make_dist("vault-typo", "vault_typo", """
        from vault.hookspecs import hookimpl

        @hookimpl
        def vault_register_numbering_scheme(register):
            pass
    """)
    with pytest.raises(PluginError, match=r"plugin vault_typo is invalid: .*vault_register_numbering_scheme"):
        plugins.get_plugin_manager(environ={})


def test_hook_with_wrong_arguments_fails_naming_the_plugin(bare_pm):
    class Plugin:
        @hookimpl
        def vault_register_classifiers(self, register, extra):
            pass

    with pytest.raises(PluginError, match="plugin wrongargs is invalid"):
        plugins.register_plugin(bare_pm, Plugin(), name="wrongargs")


def test_plugin_that_fails_to_import_is_named(make_dist):
    make_dist("vault-broken", "vault_broken", "raise RuntimeError('no config\\nsecond line')\n")
    with pytest.raises(PluginError) as info:
        plugins.get_plugin_manager(environ={})
    assert str(info.value) == "plugin vault_broken failed: RuntimeError: no config"
    assert "leave it out of VAULT_LOAD_PLUGINS" in info.value.hint


def test_same_plugin_name_from_two_distributions_is_refused(make_dist):
    make_dist("vault-one", "vault_one", GOOD_PLUGIN, entry_point="clash")
    make_dist("vault-two", "vault_two", GOOD_PLUGIN, entry_point="clash")
    with pytest.raises(PluginError, match="plugin clash is provided by both vault-one and vault-two"):
        plugins.get_plugin_manager(environ={})


def test_raising_plugin_is_reported_by_name(bare_pm):
    class Raising:
        @hookimpl
        def vault_register_classifiers(self, register):
            raise KeyError("classifier table missing")

    plugins.register_plugin(bare_pm, Raising(), name="raiser")
    with pytest.raises(PluginError, match=r"^plugin raiser failed: KeyError: 'classifier table missing'$"):
        plugins.classifiers(bare_pm)


def test_call_plugin_keeps_the_first_line_and_passes_plugin_errors():
    def boom():
        raise ValueError("first\nsecond")

    with pytest.raises(PluginError, match=r"^plugin p failed: ValueError: first$") as info:
        plugins.call_plugin("p", boom)
    assert isinstance(info.value.__cause__, ValueError)
    original = PluginError("plugin q: already explained")
    with pytest.raises(PluginError) as again:
        plugins.call_plugin("p", lambda: (_ for _ in ()).throw(original))
    assert again.value is original


def test_duplicate_scheme_names_are_refused_naming_both_plugins(bare_pm):
    class Scheme:
        @hookimpl
        def vault_register_numbering_schemes(self, register):
            register("example.com/seq", lambda options: None)

    plugins.register_plugin(bare_pm, Scheme(), name="first")
    plugins.register_plugin(bare_pm, Scheme(), name="copycat")
    with pytest.raises(PluginError, match="numbering scheme 'example.com/seq' is registered by both plugin first "
                                          "and plugin copycat"):
        plugins.numbering_schemes(bare_pm)


def test_third_party_plugin_cannot_take_a_builtin_name(pm):
    class Copycat:
        @hookimpl
        def vault_register_numbering_schemes(self, register):
            register("standard", lambda options: None)

    plugins.register_plugin(pm, Copycat(), name="copycat")
    with pytest.raises(PluginError, match="plugin copycat: numbering scheme name 'standard' must be fully qualified"):
        plugins.numbering_schemes(pm)


@pytest.mark.parametrize("name", ["mine", "example/mine", "Example.com/Mine", "example.com/"])
def test_third_party_names_must_be_fully_qualified(bare_pm, name):
    class Plugin:
        @hookimpl
        def vault_register_export_formats(self, register):
            register(name, lambda options: None)

    plugins.register_plugin(bare_pm, Plugin(), name="unqualified")
    with pytest.raises(PluginError, match="plugin unqualified: export format name .* must be fully qualified"):
        plugins.export_formats(bare_pm)


def test_vault_register_numbering_schemes_standard(pm):
    registration = plugins.numbering_schemes(pm)["standard"]
    assert registration.plugin == "numbering"
    assert registration({}).number(sequence=42, facts=FACTS) == "E-2026-000042"
    custom = registration({"pattern": "{year}{type}{seq:x}"})
    assert custom.number(sequence=255, facts={**FACTS, "customer_type": "individual"}) == "2026Iff"


@pytest.mark.parametrize("pattern, problem", [
    ("{type}-{year}", "must contain {seq}"), ("{type} {seq}", "whitespace"), ("{seq}/{year}", "'/'"),
    ("{seq:6d}", "zero-padded"), ("{seq!s:.1}", "conversion"), ("{dept}-{seq}", "unknown field"),
    ("{seq", "not a valid format string"), ("X" * 60 + "{seq}", "longer than 64"),
])
def test_vault_register_numbering_schemes_refuses_bad_patterns(pm, pattern, problem):
    with pytest.raises(PluginError, match=r"^plugin numbering failed: ValueError: .*" + re.escape(problem)):
        plugins.numbering_schemes(pm)["standard"]({"pattern": pattern})


def test_numbering_scheme_guard_refuses_bad_output_and_withholds_undeclared_facts(bare_pm):
    seen = []

    class Scheme:
        facts = frozenset({"created"})

        def number(self, *, sequence, facts):
            seen.append(dict(facts))
            return "has space" if sequence == 2 else f"N{sequence}"

    class Plugin:
        @hookimpl
        def vault_register_numbering_schemes(self, register):
            register("example.com/spaces", lambda options: Scheme())

    plugins.register_plugin(bare_pm, Plugin(), name="spaces")
    scheme = plugins.numbering_schemes(bare_pm)["example.com/spaces"]({})
    assert scheme.number(sequence=1, facts=FACTS) == "N1" and seen == [{"created": "2026-03-01"}]
    with pytest.raises(PluginError, match="plugin spaces: numbering scheme 'example.com/spaces' returned an invalid"):
        scheme.number(sequence=2, facts=FACTS)
    with pytest.raises(ValueError):
        scheme.number(sequence=0, facts=FACTS)


def test_vault_register_classifiers_standard(pm):
    classifier = plugins.classifiers(pm)["standard"]({})
    assert classifier.classify(facts=FACTS) == "enterprise/network-services/2026"
    assert classifier.classify(facts={**FACTS, "business": "Réseau & Télécom"}) == "enterprise/reseau-telecom/2026"
    chinese = classifier.classify(facts={**FACTS, "customer_type": "individual", "business": "网络服务"})
    assert chinese.startswith("individual/xn--") and plugins.check_class_path(chinese) is None
    with pytest.raises(PluginError, match="plugin classification failed: ValueError: customer_type"):
        classifier.classify(facts={**FACTS, "customer_type": "government"})


class _Exporter:
    kind, suffix = "file", ".txt"

    def export(self, *, dossier, documents, dest):
        if dossier.get("fail"):
            raise OSError("disk full")
        dest.write(b"".join(doc.encode() for doc in documents))


class _Target:
    def __init__(self, url):
        self.url, self.objects = url, {}

    def put(self, name, data):
        self.objects[name] = data.read()

    def exists(self, name):
        return name in self.objects


class _Notifier:
    def __init__(self, options):
        self.sink = options["sink"]

    def notify(self, *, department, subject, body):
        self.sink.append((department, subject, body))


class _Families:
    @hookimpl
    def vault_register_export_formats(self, register):
        register("example.com/text", lambda options: _Exporter())

    @hookimpl
    def vault_register_backup_targets(self, register):
        register("com.example.memory", _Target)

    @hookimpl
    def vault_register_notifiers(self, register):
        register(name="example.com/list", factory=_Notifier)

    @hookimpl
    def vault_register_retention_events(self, register):
        register("example.com/contract-fulfilled", "The customer's contract was fulfilled.")


@pytest.fixture
def families_pm(bare_pm):
    plugins.register_plugin(bare_pm, _Families(), name="families")
    return bare_pm


def test_vault_register_export_formats(families_pm):
    exporter = plugins.export_formats(families_pm)["example.com/text"]({})
    dest = io.BytesIO()
    exporter.export(dossier={}, documents=["a", "b"], dest=dest)
    assert dest.getvalue() == b"ab" and exporter.kind == "file"
    with pytest.raises(PluginError, match="^plugin families failed: OSError: disk full$"):
        exporter.export(dossier={"fail": True}, documents=[], dest=dest)


def test_vault_register_backup_targets(families_pm):
    target = plugins.backup_targets(families_pm)["com.example.memory"]("com.example.memory://bucket")
    target.put("snapshots/1", io.BytesIO(b"ciphertext"))
    assert target.exists("snapshots/1") and target.url == "com.example.memory://bucket"


def test_vault_register_backup_targets_needs_a_qualified_url_scheme(bare_pm):
    class Plugin:
        @hookimpl
        def vault_register_backup_targets(self, register):
            register("example.com/webdav", object)

    plugins.register_plugin(bare_pm, Plugin(), name="webdav")
    with pytest.raises(PluginError, match="must be a reverse-DNS URL scheme"):
        plugins.backup_targets(bare_pm)


def test_vault_register_notifiers(families_pm):
    sink: list = []
    notifier = plugins.notifiers(families_pm)["example.com/list"]({"sink": sink})
    notifier.notify(department="sales", subject="review due", body="E-2026-000042")
    assert sink == [("sales", "review due", "E-2026-000042")]
    with pytest.raises(PluginError, match="^plugin families failed: TypeError: "):
        notifier.notify(department="sales")


def test_vault_register_retention_events(families_pm):
    events = plugins.retention_events(families_pm)
    assert events["example.com/contract-fulfilled"] == plugins.RetentionEvent(
        "example.com/contract-fulfilled", "The customer's contract was fulfilled.", "families")


def test_describe_plugins(pm):
    plugins.register_plugin(pm, _Families(), name="families")
    rows = {row["name"]: row for row in plugins.describe_plugins(pm)}
    assert rows["numbering"] == {"name": "numbering", "distribution": "vault", "version": "0.1.0",
                                 "hooks": ["vault_register_numbering_schemes"], "builtin": True}
    assert rows["families"]["builtin"] is False and rows["families"]["version"] is None
    assert len(rows["families"]["hooks"]) == 4


def test_plugin_code_imports_neither_click_nor_cryptography():
    root = Path(__file__).parent.parent
    for path in [root / "vault" / "hookspecs.py", *sorted((root / "vault" / "plugins").glob("*.py")),
                 *sorted((root / "vault" / "testing").glob("*.py")), *sorted((root / "plugins").glob("*.py"))]:
        imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.ImportFrom)}
        assert not imported & {"click", "cryptography"}, path


def test_plugin_hooks_have_tests():
    """Every hook spec needs a test here whose name contains the hook's name."""
    hooks = {name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("vault_")}
    tested = {name for name in globals() if name.startswith("test_")}
    untested = sorted(h for h in hooks if not any(h in t for t in tested))
    assert hooks and not untested, f"hooks without a test_<hook>... test in {__file__}: {untested}"
