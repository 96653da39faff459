"""One walk of the vault directory whose listings every part of ``check`` reads: each directory listed once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from vault.store import STAGING_PREFIX, TMP_PREFIX, walk


class Tree:
    """Every directory under ``root`` as ``store.walk`` lists it (top down; symbolic links to
    directories listed, not followed), by its path relative to ``root`` ("" for ``root``): its
    subdirectory names and its other names. Only the directories under ``tops``, if given, with
    every subdirectory named ``prune`` left out; a backup's staging directory (``STAGING_PREFIX``,
    in the root) is never entered: its hard links are not the vault's files. ``odd``: what the walk
    listed that is neither a regular file nor a directory (``store.walk``), relative paths, sorted."""

    def __init__(self, root: Path | str, tops: Iterable[str] | None = None, prune: str | None = None) -> None:
        self.root = os.fspath(root)
        self.listing: dict[str, tuple[list[str], list[str]]] = {}
        cut = len(self.root) + 1
        odd: list[str] = []
        for top in ([""] if tops is None else tops):
            for dirpath, dirnames, filenames in walk(os.path.join(self.root, top) if top else self.root, odd):
                if prune is not None:
                    dirnames[:] = [x for x in dirnames if x != prune]
                if dirpath == self.root:
                    dirnames[:] = [x for x in dirnames if not x.startswith(STAGING_PREFIX)]
                self.listing[dirpath[cut:]] = (dirnames, filenames)
        self.odd = sorted(x[cut:] for x in odd)

    def names(self, rel: str) -> list[str] | None:
        """Every name in directory ``rel`` (None: no such directory was listed)."""
        got = self.listing.get(rel)
        return None if got is None else [*got[0], *got[1]]

    def files_under(self, tops: Iterable[str], prune: str) -> Iterator[tuple[str, list[str]]]:
        """(directory, its file names) of every directory under each of ``tops`` in turn, none of
        whose components below it is ``prune`` — what a walk of each, pruning ``prune``, lists."""
        by_top: dict[str, list[tuple[str, list[str]]]] = {}
        for rel, (_, files) in self.listing.items():
            parts = rel.split("/")
            if prune not in parts[1:]:
                by_top.setdefault(parts[0], []).append((rel, files))
        for top in tops:
            yield from by_top.get(top, ())

    def temporaries(self) -> list[str]:
        """Temporary files left by interrupted writes (``store.find_temporaries``), relative paths."""
        return [f"{rel}/{f}" if rel else f for rel, (_, files) in self.listing.items()
                for f in files if f.startswith(TMP_PREFIX)]
