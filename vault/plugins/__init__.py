"""Loading vault plugins through entry points and collecting what they register, with errors naming the plugin."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from vault.plugins import discovery, hookspecs
from vault.errors import PluginError
from vault.i18n import Message, N_

#: The entry-point group every plugin, built-in or third-party, is registered under.
ENTRY_POINT_GROUP = "vault"
#: Comma-separated allowlist of third-party distribution or entry-point names; unset loads all of them.
ALLOWLIST_ENV = "VAULT_LOAD_PLUGINS"
#: The distribution whose entry points are the built-ins; they always load.
BUILTIN_DISTRIBUTION = "vault"
#: The cleartext classification facts a numbering scheme or classifier may be given.
FACTS = frozenset({"customer_type", "business", "dept", "created"})

_SHORT_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_QUALIFIED_NAME = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+/[a-z0-9][a-z0-9._-]*\Z")
_URL_SCHEME = re.compile(r"[a-z][a-z0-9-]*\Z")
_QUALIFIED_URL_SCHEME = re.compile(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+\Z")
# "!" .. "~" without "/": printable ASCII, no whitespace, and no path separator so that a number can
# never be mistaken for (or smuggled into) a path.
_ARCHIVE_NUMBER = re.compile(r"[!-.0-~]{1,64}\Z")
_CLASS_PATH = re.compile(r"[a-z0-9-]+(/[a-z0-9-]+)*\Z")


@dataclass(frozen=True)
class PluginSource:
    """Where a loaded plugin came from: its distribution, version and whether it is a built-in."""

    distribution: str | None
    version: str | None
    builtin: bool
    entry_point: str | None = None


class VaultPluginManager(pluggy.PluginManager):
    """A pluggy ``PluginManager`` for project ``vault`` that remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__("vault")
        self.add_hookspecs(hookspecs)
        #: plugin name -> PluginSource, for plugins loaded from entry points.
        self.sources: dict[str, PluginSource] = {}

    def is_builtin(self, plugin_name: str) -> bool:
        """Return whether the named plugin is one of the vault's built-ins."""
        source = self.sources.get(plugin_name)
        return bool(source and source.builtin)


def get_plugin_manager(*, environ: Mapping[str, str] | None = None,
                       entry_points: bool = True, cache: bool = True) -> VaultPluginManager:
    """Build a fresh plugin manager with the hook specs and the allowed entry-point plugins loaded.

    :param environ: where to read ``VAULT_LOAD_PLUGINS`` (default ``os.environ``): unset loads every
        installed plugin, empty loads the built-ins only, otherwise a comma-separated allowlist of
        distribution or entry-point names. Built-ins always load.
    :param entry_points: ``False`` gives a manager with the specs only, for tests.
    :param cache: ``False`` reads the installed distributions' metadata itself, neither reading nor
        writing the entry-point cache (the conformance kit: it proves a plugin's packaging).
    :raises PluginError: a plugin failed to import, implements an unknown hook, or clashes with another.
    """
    pm = VaultPluginManager()
    if entry_points:
        env = os.environ if environ is None else environ
        raw = env.get(ALLOWLIST_ENV)
        allow = None if raw is None else {item.strip() for item in raw.split(",") if item.strip()}
        load_entry_points(pm, allow=allow, cache=cache)
    return pm


_normalise = discovery.normalise


def load_entry_points(pm: VaultPluginManager, *, allow: set[str] | None = None, cache: bool = True) -> None:
    """Register the ``vault`` entry points of installed distributions into ``pm``, then check them.

    :param allow: third-party distribution or entry-point names to load; ``None`` loads all of them.
    :raises PluginError: naming the plugin that failed to load, validate, or clashed.
    """
    allowed = None if allow is None else {_normalise(a) for a in allow} | set(allow)
    found = []
    named: set[str] = set()  # allowlist entries that matched a third-party distribution or entry point
    for ep in discovery.entry_points(ENTRY_POINT_GROUP) if cache else discovery.scan(ENTRY_POINT_GROUP):
        builtin = ep.dist == BUILTIN_DISTRIBUTION
        if allowed is not None:
            listed = ep.dist in allowed or ep.name in allowed
            if listed:
                named |= {ep.dist, ep.name}
            elif not builtin:
                continue
        found.append((not builtin, ep.dist, ep.name, ep))
    if allow:
        # A misspelt name would otherwise silently load nothing, and the office would run without
        # the numbering scheme or target it believes it configured.
        unknown = sorted(a for a in allow if a not in named and _normalise(a) not in named)
        if unknown:
            raise PluginError(N_("{ALLOWLIST_ENV} names no installed plugin: {unknown}"),
                              hint=N_("see 'vault plugins list' for the names; entries are distribution or entry-point names"), ALLOWLIST_ENV=ALLOWLIST_ENV, unknown=', '.join(unknown))
    for _, dist_name, _, ep in sorted(found, key=lambda f: f[:3]):
        source = PluginSource(dist_name, ep.version, dist_name == BUILTIN_DISTRIBUTION, ep.value)
        previous = pm.sources.get(ep.name)
        if previous is not None:
            # The same distribution seen twice on sys.path is harmless; two claiming one name is not.
            if (previous.distribution, previous.entry_point) == (dist_name, ep.value):
                continue
            raise PluginError(
                N_("plugin {name} is provided by both {distribution} and {dist_name}"),
                hint=N_("uninstall one of them, or leave one out of {ALLOWLIST_ENV}"), name=ep.name, distribution=previous.distribution, dist_name=dist_name, ALLOWLIST_ENV=ALLOWLIST_ENV,
            )
        try:
            register_plugin(pm, call_plugin(ep.name, discovery.load, ep.value), name=ep.name, source=source)
        except PluginError as exc:
            if not source.builtin:
                exc.hint = Message(N_("fix or uninstall {dist_name}, or leave it out of {ALLOWLIST_ENV}"), dist_name=dist_name, ALLOWLIST_ENV=ALLOWLIST_ENV)
            raise
    check_plugins(pm)


def register_plugin(pm: VaultPluginManager, plugin: object, *, name: str,
                    source: PluginSource | None = None) -> None:
    """Register one plugin object (a module or instance with ``@hookimpl`` functions) under ``name``.

    :raises PluginError: the name is taken, or a hook implementation does not match its spec.
    """
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(N_("plugin {name} is invalid: {first_line}"), name=name, first_line=_first_line(exc)) from exc
    except ValueError as exc:
        raise PluginError(N_("plugin {name} cannot be registered: {first_line}"), name=name, first_line=_first_line(exc)) from exc
    if source is not None:
        pm.sources[name] = source


def check_plugins(pm: pluggy.PluginManager) -> None:
    """Fail loudly on a hook implementation with no spec: a misspelled hook would otherwise never run.

    :raises PluginError: naming the plugin and the unknown hook.
    """
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(
            N_("plugin {name} is invalid: {first_line}"),
            hint=N_("check the hook's spelling against docs/PLUGINS.md, or leave the plugin out of {ALLOWLIST_ENV}"), name=name, first_line=_first_line(exc), ALLOWLIST_ENV=ALLOWLIST_ENV,
        ) from exc


def _first_line(exc: BaseException) -> str:
    # A plugin that words its message for the catalogue (a vault.i18n.Message) is shown translated.
    if exc.args and isinstance(exc.args[0], Message) and "\n" not in exc.args[0] and len(exc.args[0]) <= 200:
        return exc.args[0]
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""


def call_plugin(plugin: str, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call plugin code so that anything it raises becomes a ``PluginError`` naming the plugin.

    :param plugin: the plugin's name, as registered.
    :raises PluginError: ``plugin <name> failed: <type>: <first line>``; a ``PluginError`` passes as is.
    """
    try:
        return func(*args, **kwargs)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(N_("plugin {plugin} failed: {kind}: {first_line}"), plugin=plugin, kind=type(exc).__name__,
                          first_line=_first_line(exc)) from exc


def check_archive_number(number: object) -> str | None:
    """Return what is wrong with an archive number, or ``None`` if it is valid."""
    if not isinstance(number, str):
        return Message(N_("not a str but {name__}"), name__=type(number).__name__)
    if not _ARCHIVE_NUMBER.match(number):
        return Message(N_("{number!r} is not 1-64 printable ASCII characters without whitespace or '/'"), number=number[:80])
    return None


def check_class_path(path: object) -> str | None:
    """Return what is wrong with a class path, or ``None`` if it is valid."""
    if not isinstance(path, str):
        return Message(N_("not a str but {name__}"), name__=type(path).__name__)
    if not _CLASS_PATH.match(path):
        return Message(N_("{path!r} is not '/'-joined segments of [a-z0-9-]+"), path=path[:80])
    return None


def declared_facts(obj: object) -> frozenset[str]:
    """The facts a numbering scheme or classifier reads: its ``facts`` attribute, or all of ``FACTS``."""
    return frozenset(getattr(obj, "facts", FACTS))


class PluginObject:
    """What a registered factory built, with every method call going through :func:`call_plugin`."""

    def __init__(self, obj: object, registration: Registration) -> None:
        self.wrapped: Any = obj
        self.registration = registration

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self.wrapped, attr)
        if not callable(value):
            return value
        return lambda *args, **kwargs: call_plugin(self.registration.plugin, value, *args, **kwargs)

    def _facts(self, facts: Mapping[str, str]) -> dict[str, str]:
        # Data minimisation: plugin code is given the facts it declared, never the rest.
        return {k: facts[k] for k in declared_facts(self.wrapped) & FACTS if k in facts}

    def _refuse(self, what: str, problem: str) -> PluginError:
        reg = self.registration
        return PluginError(N_("plugin {plugin}: {family} {name!r} returned an invalid {what}: {problem}"), plugin=reg.plugin, family=reg.family, name=reg.name, what=what, problem=problem)


class NumberingScheme(PluginObject):
    """A numbering scheme built from a registration; ``number()`` returns only valid archive numbers."""

    def number(self, *, sequence: int, facts: Mapping[str, str]) -> str:
        """Format the archive number for ``sequence`` (>= 1) from ``facts``."""
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
            raise ValueError(Message(N_("sequence must be a positive int, not {sequence!r}"), sequence=sequence))
        result = call_plugin(self.registration.plugin, self.wrapped.number,
                             sequence=sequence, facts=self._facts(facts))
        problem = check_archive_number(result)
        if problem:
            raise self._refuse(Message(N_("archive number")), problem)
        return result


class Classifier(PluginObject):
    """A classifier built from a registration; ``classify()`` returns only valid class paths."""

    def classify(self, *, facts: Mapping[str, str]) -> str:
        """Return the class path for ``facts``."""
        result = call_plugin(self.registration.plugin, self.wrapped.classify, facts=self._facts(facts))
        problem = check_class_path(result)
        if problem:
            raise self._refuse(Message(N_("class path")), problem)
        return result


@dataclass(frozen=True)
class Registration:
    """One thing a plugin registered: call it like its factory to build a guarded object."""

    family: str
    name: str
    plugin: str
    factory: Callable[..., Any] = field(repr=False)
    wrapper: type[PluginObject] = field(default=PluginObject, repr=False)

    def __call__(self, *args: Any, **kwargs: Any) -> PluginObject:
        """Build the object with the plugin's factory; errors name the plugin."""
        return self.wrapper(call_plugin(self.plugin, self.factory, *args, **kwargs), self)


@dataclass(frozen=True)
class RetentionEvent:
    """A retention trigger event a plugin registered."""

    name: str
    description: str
    plugin: str


def _callback_signature(*names: str) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(n, kind) for n in names])


def _collect(pm: VaultPluginManager, hook: str, family: str, params: tuple[str, str] = ("name", "factory"),
             *, url_schemes: bool = False) -> dict[str, tuple[str, Any]]:
    """Call one registration hook per plugin, so that errors and duplicates can name the plugin."""
    signature = _callback_signature(*params)
    short, qualified = (_URL_SCHEME, _QUALIFIED_URL_SCHEME) if url_schemes else (_SHORT_NAME, _QUALIFIED_NAME)
    found: dict[str, tuple[str, Any]] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        plugin = impl.plugin_name

        def register(*args: Any, _plugin: str = plugin, **kwargs: Any) -> None:
            name, value = signature.bind(*args, **kwargs).arguments.values()
            if not isinstance(name, str) or not (short if pm.is_builtin(_plugin) else qualified).match(name):
                if pm.is_builtin(_plugin):
                    wanted = Message(N_("a short name"))
                elif url_schemes:
                    wanted = Message(N_("a reverse-DNS URL scheme like com.example.name"))
                else:
                    wanted = Message(N_("fully qualified, like example.com/name"))
                raise PluginError(N_("plugin {plugin}: {family} name {name!r} must be {wanted}"), plugin=_plugin, family=family, name=name, wanted=wanted)
            if name in found:
                raise PluginError(N_("{family} {name!r} is registered by both plugin {found} and plugin {plugin}"), family=family, name=name, found=found[name][0], plugin=_plugin)
            found[name] = (_plugin, value)

        register.__signature__ = signature  # type: ignore[attr-defined]
        # Implementations may take fewer arguments than the spec (pluggy's rule), so pass only theirs.
        args = [register if arg == "register" else None for arg in impl.argnames]
        call_plugin(plugin, impl.function, *args)
    return found


def _registry(pm: VaultPluginManager, hook: str, family: str, wrapper: type[PluginObject] = PluginObject,
              **kw: Any) -> dict[str, Registration]:
    found = _collect(pm, hook, family, **kw)
    for name, (plugin, factory) in found.items():
        if not callable(factory):
            raise PluginError(N_("plugin {plugin}: {family} {name!r} was registered with a factory that is not callable"), plugin=plugin, family=family, name=name)
    return {name: Registration(family, name, plugin, factory, wrapper) for name, (plugin, factory) in found.items()}


def numbering_schemes(pm: VaultPluginManager) -> dict[str, Registration]:
    """Every registered numbering scheme, by name; ``registration(options).number(...)``."""
    return _registry(pm, "vault_register_numbering_schemes", Message(N_("numbering scheme")), NumberingScheme)


def classifiers(pm: VaultPluginManager) -> dict[str, Registration]:
    """Every registered classifier, by name; ``registration(options).classify(...)``."""
    return _registry(pm, "vault_register_classifiers", "classifier", Classifier)


def export_formats(pm: VaultPluginManager) -> dict[str, Registration]:
    """Every registered export format, by name; ``registration(options).export(...)``."""
    return _registry(pm, "vault_register_export_formats", Message(N_("export format")))


def backup_targets(pm: VaultPluginManager) -> dict[str, Registration]:
    """Every registered backup target, by URL scheme; ``registration(url)`` gives the target."""
    return _registry(pm, "vault_register_backup_targets", Message(N_("backup target")), params=("scheme", "factory"),
                     url_schemes=True)


def notifiers(pm: VaultPluginManager) -> dict[str, Registration]:
    """Every registered notifier, by name; ``registration(options).notify(...)``."""
    return _registry(pm, "vault_register_notifiers", "notifier")


def retention_events(pm: VaultPluginManager) -> dict[str, RetentionEvent]:
    """Every registered retention trigger event, by name."""
    found = _collect(pm, "vault_register_retention_events", Message(N_("retention event")), ("name", "description"))
    events = {}
    for name, (plugin, description) in found.items():
        if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
            raise PluginError(N_("plugin {plugin}: retention event {name!r} needs a one-line description"), plugin=plugin, name=name)
        events[name] = RetentionEvent(name, description.strip(), plugin)
    return events


def describe_plugins(pm: VaultPluginManager) -> list[dict[str, Any]]:
    """Describe every registered plugin for ``vault plugins list``: name, distribution, version, hooks, builtin."""
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        source = pm.sources.get(name, PluginSource(None, None, False))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "distribution": source.distribution, "version": source.version,
                     "hooks": hooks, "builtin": source.builtin})
    return sorted(rows, key=lambda row: (not row["builtin"], row["name"]))
