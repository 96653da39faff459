"""What an interrupted command leaves beside its commit, finished or dropped under the next exclusive lock.

``authority.recover`` finishes the commit itself (staged records renamed into place or dropped).
What a command does around its commit point is finished here, from the history alone and without
a key: the files of a submission the history decided, the key release of a grant the history
closed, and (``vault repair``) the directory and key table of a dossier whose creation never
reached the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
import re

from vault.store import fsync_dir, remove, remove_tree

if TYPE_CHECKING:
    from vault.archive.vault import Vault

_RELEASE = re.compile(r"([0-9a-f]{32})\.(G-\d{6,12})\.age")
_ID = re.compile(r"[0-9a-f]{32}")


def finish(v: Vault, st: dict, *, dossiers: bool = False) -> list[str]:
    """Under the exclusive lock: the leftovers an interruption left, removed; returns their paths.
    Every writer does this for submissions and key releases (a directory each, small); the walk of
    every dossier directory is left to ``vault repair`` (``dossiers``)."""
    done: list[str] = []
    _decided_submissions(v, st, done)
    _closed_releases(v, st, done)
    if dossiers:
        _uncreated_dossiers(v, st, done)
    return done


def _decided_submissions(v: Vault, st: dict, done: list[str]) -> None:
    d = v.root / "intake"
    if not d.is_dir():
        return
    gone = []
    for name in sorted(os.listdir(d)):
        sid, _, ext = name.partition(".")
        if ext in ("age", "toml") and sid in st["intake"] and remove(d / name, missing_ok=True):
            gone.append(f"intake/{name}")
    if gone:
        fsync_dir(d)
        done += gone


def _closed_releases(v: Vault, st: dict, done: list[str]) -> None:
    """A key release whose grant the history closed (revoked, swept, its grantee removed, its dossier
    destroyed) or never opened: the grant's own command deletes it after its entry."""
    d = v.root / "keys" / "grants"
    if not d.is_dir():
        return
    removed = False
    for name in sorted(os.listdir(d)):
        m = _RELEASE.fullmatch(name)
        if m is None:
            continue
        g = st["grants"].get(m.group(2))
        if g is None or g.get("closed") is not None or g["dossier"] != m.group(1):
            removed = remove(d / name, missing_ok=True) or removed
            done.append(f"keys/grants/{name}")
    if removed:
        fsync_dir(d)


def _uncreated_dossiers(v: Vault, st: dict, done: list[str]) -> None:
    """A dossier directory with no manifest that no history entry created (``dossier create`` stopped
    before its commit point), and its key table; a created dossier is never touched here."""
    base = v.root / "dossiers"
    if not base.is_dir():
        return
    removed = False
    for name in sorted(os.listdir(base)):
        if not _ID.fullmatch(name) or name in st["dossiers"]:
            continue
        ddir = base / name
        left = set(os.listdir(ddir)) if ddir.is_dir() else set()
        if left - {"documents"} or (ddir / "documents").is_dir() and os.listdir(ddir / "documents"):
            continue  # something else is in it: not what an interrupted create leaves
        remove_tree(ddir)
        removed = True
        if remove(v.root / "keys" / f"{name}.age", missing_ok=True):
            done.append(f"keys/{name}.age")
        done.append(f"dossiers/{name}")
    if removed:
        fsync_dir(base)


def uncreated_dossier(v: Vault, st: dict, name: str) -> bool:
    """Whether ``dossiers/<name>`` is what a ``dossier create`` stopped before its commit leaves."""
    ddir = v.root / "dossiers" / name
    return name not in st["dossiers"] and not (ddir / "manifest.toml").exists()
