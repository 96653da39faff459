"""The vault handle and acting member as the modules under ``archive/vault.py`` see them.

Protocols, so that the modules ``archive/vault.py`` imports can name these types without importing it
back (an import cycle the type checker would otherwise need).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from vault.clock import Clock
    from vault.store.identity import MemberKey


class Vault(Protocol):
    """What the modules below ``archive/vault.py`` use of ``vault.archive.vault.Vault``."""

    @property
    def root(self) -> Path: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def clock(self) -> Any: ...
    @property
    def layout(self) -> Any: ...
    @property
    def policy(self) -> Any: ...
    @property
    def fingerprint(self) -> str: ...
    _state_store: Any
    _replay: Any


class Actor(Protocol):
    """What those modules use of ``vault.archive.vault.Actor``."""

    @property
    def vault(self) -> Vault: ...
    @property
    def name(self) -> str: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def identity(self) -> MemberKey: ...

    def audit(self, action: str, **kw: Any) -> None: ...
    def sign(self, data: dict[str, Any]) -> dict[str, Any]: ...
    def read_identities(self) -> list[Any]: ...
