"""What an interrupted command leaves beside its commit, finished or dropped under the next exclusive lock.

``recover`` finishes the commit itself (staged records renamed into place or dropped).
What a command does around its commit point is finished here, from the history alone and without
a key: the files of a submission the history decided, the key release of a grant the history
closed, and (``vault repair``) the directory and key table of a dossier whose creation never
reached the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
import re
import time
from pathlib import Path

from vault import store
from vault.archive import checkcache, trust
from vault.archive.authority import Replay, sha256, state
from vault.i18n import Message, N_
from vault.store import fsync_dir, remove, remove_tree, staging
from vault.store.tree import Tree
from vault.store import NotRegularError, not_regular, open_regular

if TYPE_CHECKING:
    from vault.archive.handle import Vault

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


# -- commit recovery -------------------------------------------------------------------------------

RECORD_DIRS = ("policy", "members", "rings", "keys", "requests", "grants", "holds", "destructions", "reviews",
               "intake", "dossiers", "paper", "index", "recovery")


def _pending_files(v: Vault, tree: Tree | None = None) -> list[Path]:
    """Every ``.pending`` in the record directories: a walk of the whole vault (``check``, ``repair``),
    or ``tree``'s listings of it."""
    pend = [v.root / "policy.toml.pending"] if (v.root / "policy.toml.pending").exists() else []
    tree = tree or Tree(v.root, RECORD_DIRS, "documents")
    for rel, filenames in tree.files_under(RECORD_DIRS, "documents"):
        pend += [v.root / rel / f for f in filenames if f.endswith(staging.PENDING)]
    return pend


def recover(v: Vault, *, full: bool = False) -> list[str]:
    """Under the exclusive lock: finish or drop commits an interruption left half done.

    A ``.pending`` file whose hash the history names for its path is the committed version: it is
    renamed into place. Any other is the leftover of a commit that never reached the history, and
    is deleted. A path the history deleted is deleted. Every writer looks only at the paths the
    staging journal names (``vault.store.staging``: what the last, interrupted, commit staged), so
    taking the lock costs nothing that grows with the vault; ``full`` (``vault repair``) walks every
    record directory and every path the history ever deleted.
    """
    named = staging.read(v.root)
    if not named and not full:
        staging.clear(v.root)  # (a journal of nothing but damage)
        return []
    st = state(v)
    done, dirs = [], set()
    if full:
        named += [p.relative_to(v.root).as_posix()[: -len(staging.PENDING)] for p in _pending_files(v)]
        named += [rel for rel, (h, *_) in st["files"].items() if h is None]
    for rel in dict.fromkeys(named):
        p = v.root / rel
        pend = Path(str(p) + staging.PENDING)
        store.check_confined(pend)  # a path from the journal, through a directory a link may replace
        ent = st["files"].get(rel)
        if os.path.lexists(pend):
            if ent is not None and ent[0] is not None and staging.pending_is(p, ent[0]):
                store.replace(pend, p)
                done.append(rel)
            else:
                store.remove(pend)
            dirs.add(p.parent)
        elif ent is not None and ent[0] is None and store.remove(p, missing_ok=True):
            done.append(rel)
            dirs.add(p.parent)
    for d in sorted(dirs):
        store.fsync_dir(d)
    staging.clear(v.root)
    return done


def interrupted(v: Vault, rep: Replay, tree: Tree | None = None) -> list[str]:
    """Commits an interruption left half done (what ``recover`` finishes or drops), as notes for ``check``."""
    notes: list[str] = []
    for p in _pending_files(v, tree):
        rel = p.relative_to(v.root).as_posix()[: -len(staging.PENDING)]
        ent = rep.state["files"].get(rel)
        if ent is not None and ent[0] is not None and staging.pending_is(v.root / rel, ent[0]):
            notes.append(Message(N_("{rel}: committed by history entry {seq} but not yet in place (an interrupted "
                                    "command; the next write or 'vault repair' finishes it)"), rel=rel, seq=ent[1]))
        else:
            notes.append(Message(N_("{rel}.pending: staged by a command that stopped before its commit point "
                                    "(counts for nothing; the next write or 'vault repair' removes it)"), rel=rel))
    for rel, (h, seq, *_) in sorted(rep.state["files"].items()):
        if h is None and seq == rep.state["count"] and (v.root / rel).exists():
            notes.append(Message(N_("{rel}: deleted by history entry {seq}, the last, but still here (an "
                                    "interrupted command; the next write or 'vault repair' deletes it)"),
                                 rel=rel, seq=seq))
    return notes


def _hash_record(p: str, rel: str, h: str, verified: checkcache.Verified | None) -> str | None:
    """SHA-256 of record ``p`` (None if missing), from ``verified`` when its status is one seen with ``h``."""
    if verified is not None:
        try:
            if verified.record(rel, checkcache.status(os.stat(p)), h):
                return h
        except OSError:
            pass
    try:
        with open_regular(p) as f:
            at = time.time_ns()
            seen = checkcache.status(os.fstat(f.fileno()))
            got = sha256(f.read())
    except (FileNotFoundError, NotADirectoryError):
        return None
    if verified is not None and got == h:
        verified.put_record(rel, seen, h, at=at)
    return got


def check_files(v: Vault, rep: Replay, verified: checkcache.Verified | None = None,
                tree: Tree | None = None) -> list[str]:
    """Every record file against the history: missing, changed, rolled back, or named by no entry.

    A fact file (a closing, a denial, a use) that is missing does not revert the fact — the state
    comes from the entries — but it is tampering, and named here. With ``verified`` (``vault
    check`` without a key), a file whose status this client saw when it verified its hash is not
    read again (``checkcache``).
    """
    problems: list[str] = []
    files = rep.state["files"]
    root = str(v.root)
    for rel, (h, seq, *_) in sorted(files.items()):
        if not trust.is_record(rel):
            continue  # a file an earlier format's entries named that is no record now
        p = os.path.join(root, rel)  # (a string: pathlib costs more than the stat, 3,000 records a check)
        if h is None:
            if os.path.exists(p) and seq != rep.state["count"]:  # by the last entry: ``interrupted`` names it
                problems.append(Message(N_("{rel}: history entry {seq} deleted it, but it is back"), rel=rel, seq=seq))
            continue
        try:
            got = _hash_record(p, rel, h, verified)
        except NotRegularError:  # (never followed nor read: a FIFO would stop the check)
            problems.append(not_regular(rel).message)
            continue
        if got != h and staging.pending_is(Path(p), h):
            continue  # an interrupted commit: ``interrupted`` names it, the next writer finishes it
        if got is None:
            problems.append(Message(N_("{rel}: missing (history entry {seq} wrote it)"), rel=rel, seq=seq))
            continue
        if got != h:
            old = (rep.seen or {}).get(rel, {}).get(got)
            if old is not None:
                problems.append(Message(N_("{rel}: rolled back: it is the version of entry {old}, the history's newest is entry {seq}"), rel=rel, old=old, seq=seq))
            else:
                problems.append(Message(N_("{rel}: changed (does not match history entry {seq})"), rel=rel, seq=seq))
    tree = tree or Tree(v.root, RECORD_DIRS, "documents")
    top = tree.listing.get("") or ([], [x.name for x in v.root.iterdir() if x.is_file()])
    for rel_dir, filenames in [*tree.files_under(RECORD_DIRS, "documents"), ("", top[1])]:
        for f in filenames:
            rel = f"{rel_dir}/{f}" if rel_dir else f
            if trust.is_record(rel) and rel not in files and (rel_dir or os.path.isfile(v.root / rel)):
                problems.append(Message(N_("{rel}: no history entry names this record (it counts for nothing)"), rel=rel))
    return problems
