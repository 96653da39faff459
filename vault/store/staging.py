"""The staging journal: the paths a commit is about to stage or delete, written before any of them.

A commit (``vault.archive.audit.commit_many``) stages each record as ``<path>.pending`` before the
history entry that commits it, and renames or deletes after it. An interruption can leave those
files anywhere in the vault; the journal, one small append-only file in the work directory
(``WORK_DIR/journal``), names them, so the next writer finishes or drops them without walking every
dossier (``vault.archive.recovery``). It is durable before the first ``.pending`` is
written, cleared once the commit is whole. It is only a hint: the history decides what each named
path becomes, so a forged or deleted journal can make a recovery skip or revisit a path, never
change a record (``vault repair`` walks the whole vault regardless).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from vault.store import fsync_dir, seam, work_dir, WORK_DIR
from vault.store.appending import append_whole
from vault.store import NotRegularError, open_regular, open_regular_to_update, read_regular

JOURNAL = "journal"
#: The name a record is staged under before the entry that commits it: ``<path>.pending``.
PENDING = ".pending"
#: A vault path as commits write them: plain names joined by ``/``, never ``.`` or ``..``.
_REL = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*")


def path(root: Path) -> Path:
    return Path(root) / WORK_DIR / JOURNAL


def note(root: Path, rels: list[str]) -> None:
    """Append ``rels`` and make them durable; call under the exclusive lock, before staging them.

    Whole or not at all: a short write (a full disk) is cut off again, so a half line never joins
    the next commit's first path.
    """
    if not rels:
        return
    p = work_dir(root) / JOURNAL
    new = not p.exists()
    append_whole(p, "".join(f"{r}\n" for r in rels).encode(), step="journal", step_first=True)
    if new:
        fsync_dir(p.parent)


def read(root: Path) -> list[str]:
    """The paths named, in order, once each; a line that is incomplete or not a vault path is skipped."""
    try:
        with open_regular(path(root)) as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    except NotRegularError:
        # A link or FIFO put in the work directory names nothing of ours (and ``clear`` removes it);
        # what an interrupted commit left is found as without a journal, by ``vault repair``.
        return []
    out: dict[str, None] = {}
    for raw in data.split(b"\n")[:-1]:
        try:
            rel = raw.decode("ascii")
        except UnicodeDecodeError:
            continue
        if _REL.fullmatch(rel) and ".." not in rel.split("/"):
            out[rel] = None
    return list(out)


def clear(root: Path) -> None:
    """Empty the journal once what it names is finished (not synced: a journal that comes back
    after a power loss names paths whose recovery is already done, which recovery finds so)."""
    p = path(root)
    try:
        f = open_regular_to_update(p)
    except FileNotFoundError:
        return
    except NotRegularError:  # a link, FIFO or socket put there: never written through; it goes
        seam.step("unlink", p)
        os.unlink(p)
        return
    with f:
        if os.fstat(f.fileno()).st_size:
            seam.step("truncate", p)
            f.truncate(0)


# -- a record file and its staged copy ----------------------------------------------------------

def named_bytes(p: Path, h: str) -> tuple[bytes | None, bool]:
    """(the bytes SHA-256 ``h`` names, from ``p`` or its ``.pending``, or None; whether either was there).

    ``p``, then the ``.pending``, then ``p`` again: a commit's rename between the first two reads
    leaves the new bytes at ``p`` for the third."""
    found = False
    for q in (p, Path(str(p) + PENDING), p):
        try:
            data = read_regular(q)
        except FileNotFoundError:
            continue
        except NotRegularError:
            if q is not p:
                continue  # a .pending that is no file holds no commit's bytes
            raise
        found = True
        if hashlib.sha256(data).hexdigest() == h:
            return data, True
    return None, found


def committed_bytes(p: Path, h: str | None) -> bytes | None:
    """The bytes at ``p``, or those of ``p.pending`` when they are the ones hash ``h`` names (a commit
    whose renames an interruption cut short: the entry is in the history, the file not yet in place)."""
    if h is not None:
        data, _ = named_bytes(p, h)
        if data is not None:
            return data
    try:
        return read_regular(p)
    except FileNotFoundError:
        return None


def pending_is(p: Path, h: str) -> bool:
    """Whether ``p``'s staged ``.pending`` holds the bytes SHA-256 ``h`` names."""
    try:
        return hashlib.sha256(read_regular(str(p) + PENDING)).hexdigest() == h
    except (FileNotFoundError, NotRegularError):
        return False
