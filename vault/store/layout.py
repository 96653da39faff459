"""Where everything lives under the vault root (docs/FORMAT.md §2), and the names that become file names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from vault.errors import InputError


NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_name(kind: str, name: str) -> str:
    """Member, department and ring names are short lowercase tokens (they become file names)."""
    if not NAME_RE.match(name):
        raise InputError(f"bad {kind} name {name!r}", hint="use lowercase letters, digits, '.', '_' or '-' (max 64)")
    return name


@dataclass
class Layout:
    """Where everything lives under the vault root (see docs/FORMAT.md, "Repository layout")."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "vault.toml"

    @property
    def policy(self) -> Path:
        return self.root / "policy.toml"

    def member(self, name: str) -> Path:
        return self.root / "members" / f"{name}.toml"

    def ring_record(self, name: str) -> Path:
        return self.root / "rings" / f"{name}.toml"

    def ring_secret(self, name: str) -> Path:
        return self.root / "rings" / f"{name}.age"

    def key_table(self, dossier: str) -> Path:
        return self.root / "keys" / f"{dossier}.age"

    def dossier_dir(self, dossier: str) -> Path:
        return self.root / "dossiers" / dossier

    def manifest(self, dossier: str) -> Path:
        return self.dossier_dir(dossier) / "manifest.toml"

    def document(self, dossier: str, doc_id: str) -> Path:
        return self.dossier_dir(dossier) / "documents" / f"{doc_id}.age"

    @property
    def index(self) -> Path:
        return self.root / "index"
