"""The vault's plugin hook specifications: what a plugin may implement, and nothing else."""

from __future__ import annotations

from typing import Any, Callable

import pluggy

#: Marks the hook specifications below; only this module uses it.
hookspec = pluggy.HookspecMarker("vault")

#: Marks a plugin's hook implementations: ``from vault.hookspecs import hookimpl``.
hookimpl = pluggy.HookimplMarker("vault")

#: What a registration hook is given: ``register(name, factory)`` (or ``register(name, description)``).
Register = Callable[[str, Any], None]

# Every hook here is a registration hook in the style of llm: the vault calls it once per plugin with a
# ``register`` callback, and the plugin calls ``register`` for each thing it provides. The vault then
# builds the objects it needs from the factories it collected, by name, when a command asks for them.
# Names defined by third-party plugins are fully qualified (``example.com/name``) so that two plugins,
# or a plugin and a later built-in, never claim the same name; built-ins use short names.
# Implementations may take fewer arguments than the spec, so a spec can grow a keyword later.


@hookspec
def vault_register_numbering_schemes(register: Register) -> None:
    """Register numbering schemes, the declared rules that turn a sequence into an archive number [R-3.2.2].

    The vault allocates ``sequence`` (1, 2, 3, ... strictly increasing, never reused, under its lock)
    and asks the scheme configured for the vault to format the dossier's archive number from it. A
    scheme is deterministic and injective in ``sequence``; the vault still checks every number against
    all numbers ever issued and refuses a duplicate.

    :param register: ``register(name: str, factory)``; ``factory(options: dict) -> NumberingScheme``
        where ``NumberingScheme.number(*, sequence: int, facts: Mapping[str, str]) -> str``. ``facts``
        are the cleartext classification facts (``customer_type`` = ``enterprise`` | ``individual``,
        ``business``, ``dept``, ``created`` = ISO date); a scheme may declare ``facts``, the subset it
        reads, and is then given only those. A number is printable ASCII without whitespace or ``/``,
        1 to 64 characters.
    :return: ``None``; results are passed to ``register``.
    """


@hookspec
def vault_register_classifiers(register: Register) -> None:
    """Register classifiers, which place a dossier in the archive's class tree [R-3.2.1].

    :param register: ``register(name: str, factory)``; ``factory(options: dict) -> Classifier`` where
        ``Classifier.classify(*, facts: Mapping[str, str]) -> str`` returns a class path such as
        ``enterprise/network-services/2026``: segments matching ``[a-z0-9-]+`` joined by ``/``. ``facts``
        are as for numbering schemes, and a classifier may likewise declare the ``facts`` it reads.
    :return: ``None``; results are passed to ``register``.
    """


@hookspec
def vault_register_export_formats(register: Register) -> None:
    """Register export formats, which write a dossier out of the vault (``vault dossier export``) [R-3.4.2].

    :param register: ``register(name: str, factory)``; ``factory(options: dict) -> Exporter``. An
        ``Exporter`` has ``kind`` (``"file"``: ``dest`` is a writable binary stream; ``"directory"``:
        ``dest`` is a ``pathlib.Path`` to an empty directory it fills), ``suffix`` (``".json"``; ``""``
        for a directory), ``reads`` (a frozenset of ``"sealed"`` and ``"content"``: what it opens when
        allowed; absent means both) and ``export(*, dossier: ExportDossier, documents:
        Sequence[ExportDocument], dest: BinaryIO | Path, **kwargs) -> None``. ``dossier`` is a mapping
        of the cleartext manifest facts with ``granted``, ``readable``, ``profile()``, ``exported_by``,
        ``exported_at``, ``format`` and ``request``; each ``ExportDocument`` has its cleartext facts as
        attributes and in ``facts``, ``current``, ``readable``, and ``meta()``, ``open() -> BinaryIO``
        and ``rewrap(dst, recipients)``, which raise ``PermissionDeniedError`` unless this export was
        granted sealed fields or content (``vault.exportview``). The exporter is never given the
        vault's directory or keys, and writes to ``dest`` only.
    :return: ``None``; results are passed to ``register``.
    """


@hookspec
def vault_register_backup_targets(register: Register) -> None:
    """Register backup targets, the offsite stores that snapshots go to [R-3.3.1].

    :param register: ``register(scheme: str, factory)`` where ``scheme`` is a URL scheme (built-ins
        ``file``, ``s3``; a plugin's is reverse-DNS qualified, such as ``com.example.webdav``) and
        ``factory(url: str) -> Target``. A ``Target`` stores named objects (names are ``/``-separated
        printable ASCII): ``put(name: str, data: BinaryIO, *, create_only: bool = False) -> None``,
        ``get(name: str) -> BinaryIO``, ``exists(name: str) -> bool``, ``list(prefix: str = "") ->
        Iterator[str]`` and ``delete(name: str) -> None``; ``get`` and ``delete`` raise
        ``vault.errors.NotFoundError`` for a missing name. ``put`` replaces an existing object only once
        the new one is complete; with ``create_only=True`` it leaves an existing object as it is (the
        backup engine passes it for content-addressed names, whose bytes are the same; a store with
        conditional writes, such as S3 ``If-None-Match: *``, saves the upload). Targets only ever receive
        ciphertext, signed cleartext records and key tables as they are.
    :return: ``None``; results are passed to ``register``.
    """


@hookspec
def vault_register_notifiers(register: Register) -> None:
    """Register notifiers, which tell a department that something needs its attention [R-3.5.1].

    :param register: ``register(name: str, factory)``; ``factory(options: dict) -> Notifier`` where
        ``Notifier.notify(*, department: str, subject: str, body: str) -> None``. The vault puts archive
        numbers and dossier ids in ``subject`` and ``body``, never confidential manifest fields.
    :return: ``None``; results are passed to ``register``.
    """


@hookspec
def vault_register_retention_events(register: Register) -> None:
    """Register retention trigger events that ``vault doc event`` accepts (e.g. a contract fulfilled) [R-3.3.2].

    :param register: ``register(name: str, description: str)``; ``description`` is one line shown to
        the user. A retention schedule counts its period from the date such an event is recorded.
    :return: ``None``; results are passed to ``register``.
    """
