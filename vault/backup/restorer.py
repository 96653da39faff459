"""``backup restore``: a snapshot's files plus the latest mirrored key tables, rebuilt into a vault directory."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import vault.backup.blobstream as blobstream
import vault.backup.mirror as mirror
import vault.backup.packs as packs
from vault.backup.repo import _HEX64, TREES, Repo, data_name
from vault.crypto import age
from vault.errors import (AuthenticationError, FormatError, InputError, IntegrityError, NoIdentityMatchError,
                          NotFoundError, PermissionDeniedError)
from vault.archive import authority, committed
from vault.archive.vault import Vault
from vault.store import make_dir, write_atomic
from vault.store.syncing import sync_files
from vault.store.identity import MemberKey
from vault.store.counting import Progress, no_progress
from vault.i18n import Message, N_
from vault.store import jsontext


def fetch_blobs(repo: Repo, index: dict[str, tuple[str, int, int]], blob_ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Yield (blob id, bytes) for ``blob_ids``, one pack download each, every blob checked against its id."""
    by_pack: dict[str, list[str]] = defaultdict(list)
    for b in set(blob_ids):
        if b not in index:
            raise IntegrityError(N_("{url}: blob {b} is in no pack"), hint=N_("run 'vault backup verify'"), url=repo.url, b=b[:16])
        by_pack[index[b][0]].append(b)
    for pack_id, wanted in sorted(by_pack.items()):
        # Each blob is read in place and checked against its id (which is all a blob's bytes need):
        # the pack is not held, so memory follows the blobs asked for, not the pack's size.
        name = data_name(pack_id)
        blobs = blobstream.each_in_place(partial(_open_pack, repo, name), [(b, index[b][1], index[b][2]) for b in wanted],
                                         name, repo.url)
        try:
            for b, window in blobs:
                blob = blobstream.read_exactly(window, index[b][2])
                if packs.sha256_hex(blob) != b:
                    raise IntegrityError(N_("{url}: blob {b} in {data_name} is damaged"), hint=N_("run 'vault backup verify'"),
                                         url=repo.url, b=b[:16], data_name=name)
                yield b, blob
        finally:
            blobs.close()


def _open_pack(repo: Repo, name: str) -> Any:
    try:
        return repo.open(name)
    except NotFoundError:
        raise IntegrityError(N_("{url}: {data_name} is missing"), hint=N_("run 'vault backup verify'"), url=repo.url, data_name=name) from None


def open_tree(repo: Repo, snap: dict[str, Any], identities: Sequence[age.Identity],
              index: dict[str, tuple[str, int, int]]) -> tuple[dict[str, Any], list[age.Identity]]:
    """Decrypt a snapshot's tree; a member's own identity is enough, through the snapshot's ring files.

    Returns the tree and the identities that opened it (ring identities included), which also open
    the key tables of that snapshot.
    """
    if not isinstance(snap.get("tree"), str) or not _HEX64.match(snap["tree"]):
        raise IntegrityError(N_("snapshot {id}: names no valid tree"), hint=N_("run 'vault backup verify'"), id=snap['id'][:8])
    name = TREES + snap["tree"]
    blob = repo.get_verified(name)
    ids = list(identities)
    try:
        return _parse_tree(age.decrypt_bytes(blob, ids), name), ids
    except NoIdentityMatchError:
        pass
    except (FormatError, AuthenticationError):  # not an age file, or one whose bytes were changed
        raise IntegrityError(N_("{TREES}{tree}: damaged or tampered with"), hint=N_("run 'vault backup verify'"),
                             TREES=TREES, tree=snap["tree"]) from None
    # The ring files are age files to the members; their blob ids are cleartext in the snapshot so
    # that a member can bootstrap from nothing but their identity file (disaster recovery).
    for _, ring_blob in fetch_blobs(repo, index, snap.get("rings", {}).values()):
        try:
            ids.append(age.parse_identity(age.decrypt_bytes(ring_blob, identities).decode()))
        except NoIdentityMatchError:
            continue
        except (FormatError, AuthenticationError, UnicodeDecodeError):
            raise IntegrityError(N_("snapshot {id}: a ring file is damaged"), id=snap['id'][:8]) from None
    try:
        return _parse_tree(age.decrypt_bytes(blob, ids), name), ids
    except NoIdentityMatchError:
        raise PermissionDeniedError(N_("snapshot {id}: your identity opens neither its tree nor its rings"),
                                    hint=N_("restoring needs a member of the archive ring at the time of the snapshot"), id=snap['id'][:8]) from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("{TREES}{tree}: damaged or tampered with"), hint=N_("run 'vault backup verify'"),
                             TREES=TREES, tree=snap['tree']) from None


def _parse_tree(data: bytes, name: str) -> dict[str, Any]:
    """The tree, every entry of the right shape; it is encrypted to public keys, so whoever holds the
    target can forge one and nothing in it is trusted to be well formed."""
    try:
        tree = jsontext.loads(data)
        if tree.get("format") != 1 or not isinstance(tree.get("files"), list) \
                or not isinstance(tree.get("keys", {}), dict):
            raise ValueError
        for entry in tree["files"]:
            path, blob, size, mode = entry
            if not (isinstance(path, str) and isinstance(blob, str) and _HEX64.match(blob)
                    and type(size) is int and size >= 0 and type(mode) is int):
                raise ValueError
        for sha in tree.get("keys", {}).values():
            if not (isinstance(sha, str) and _HEX64.match(sha)):
                raise ValueError
        return tree
    except (ValueError, TypeError, AttributeError):
        raise IntegrityError(N_("{name}: does not parse"), hint=N_("run 'vault backup verify'"), name=name) from None


def confined(dest: Path, rel: str, *, what: str) -> Path:
    """``dest / rel`` for a path read from a tree, refused unless it stays inside ``dest``.

    Only plain relative paths of named parts pass: no absolute path, no ``..``, ``.`` or empty part,
    no NUL or backslash, and no symbolic link on the way (restore itself creates none).
    """
    parts = rel.split("/") if isinstance(rel, str) else [""]
    if not isinstance(rel, str) or rel.startswith("/") or any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
        raise IntegrityError(N_("{what}: the tree names a path outside the restore directory ({rel!r})"),
                             hint=N_("the backup target has been tampered with"), what=what, rel=rel[:80])
    out = dest.joinpath(*parts)
    for p in [out, *out.parents]:
        if p == dest:
            break
        if p.is_symlink():
            raise IntegrityError(N_("{what}: {rel!r} leads through a symbolic link"), hint=N_("restore into a new directory"), what=what, rel=rel[:80])
    return out


def _opens(blob: bytes, ids: Sequence[age.Identity]) -> bool:
    try:
        age.decrypt_bytes(blob, ids)
        return True
    except (NoIdentityMatchError, FormatError, AuthenticationError):
        return False


@dataclass
class RestoreReport:
    snapshot: str
    dest: str
    files: int = 0
    bytes: int = 0
    key_tables: int = 0
    key_tables_missing: list[str] = field(default_factory=list)
    key_tables_unreadable: list[str] = field(default_factory=list)
    rebound: list[str] = field(default_factory=list)  # key files the vault.restore entry names anew
    history: dict[str, Any] | None = None  # the checkpoint the snapshot recorded: count, head

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def restore(repo: Repo, snapshot: str, dest: Path, identities: Sequence[age.Identity],
            member: MemberKey | None = None, *, progress: Progress | None = None) -> RestoreReport:
    """Rebuild snapshot ``snapshot`` (an id prefix or ``latest``) into the new directory ``dest``.

    With ``member`` (the restoring member's identity), one ``vault.restore`` entry then binds the
    key files that differ from what the snapshot's history names (``bind_keys``).
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(N_("{dest} exists and is not empty"), hint=N_("restore into a new directory"), dest=dest)
    repo.require_config()
    snap = repo.resolve(snapshot)
    index, _, _ = repo.load_index()
    tree, ids = open_tree(repo, snap, identities, index)
    rep = RestoreReport(snapshot=snap["id"], dest=str(dest), history=snap.get("history"))
    make_dir(dest, parents=True)  # (its name durable in its parent: what is restored below it is synced at the end)
    by_blob: dict[str, list[list]] = defaultdict(list)
    what = Message(N_("snapshot {id}"), id=snap['id'][:8])
    for entry in tree["files"]:
        path, blob, size, mode = entry
        confined(dest, path, what=what)  # every path checked before the first byte is written
        by_blob[blob].append(entry)
        rep.files += 1
        rep.bytes += size
    for rel in tree.get("keys", {}):
        if not (rel.startswith("keys/") and mirror.is_table_name(rel[len("keys/"):])):
            raise IntegrityError(N_("{what}: the tree names a key table {rel!r} that is none"),
                                 hint=N_("the backup target has been tampered with"), what=what, rel=rel[:80])
        confined(dest, rel, what=what)
    # Every path was confined above, before the first byte is written (restore makes no links).
    written = blobstream.restore_blobs(repo, index, by_blob, dest, step=(progress or no_progress)(rep.bytes))
    latest = mirror.generations(repo)
    keys: dict[str, bytes] = {}
    for rel, sha_then in sorted(tree.get("keys", {}).items()):
        table = rel[len("keys/"):]
        gens = latest.get(table, [])
        if not gens or gens[-1].deleted:
            rep.key_tables_missing.append(rel)  # destroyed since, or shredded from this target
            continue
        chosen = _choose_generation(repo, gens, sha_then, ids)
        if chosen is None:
            blob = _get_generation(repo, gens[-1])
            rep.key_tables_unreadable.append(rel)
        else:
            blob = chosen
        target = confined(dest, rel, what=what)
        _write(target, blob, 0o600)
        written.append(target)
        keys[rel] = blob
        rep.key_tables += 1
    sync_files(written, top=dest)
    if member is not None:
        rep.rebound = bind_keys(dest, member, keys)
    return rep


def bind_keys(dest: Path, member: MemberKey, keys: dict[str, bytes]) -> list[str]:
    """Bind the restored key files to the restored history, in one ``vault.restore`` entry.

    Key files are history records (FORMAT §8), but a restore takes each table's newest mirrored
    generation — what a destruction removed stays removed — and no key release (they are never
    backed up): the snapshot's history names other bytes for them. The restoring member, who opened
    the rings, signs an entry naming the files as restored. Returns the paths it names.
    """
    v = Vault.open(dest)
    actor = v.act_as(member)
    with v.lock(exclusive=True):
        files: dict[str, bytes | None] = {}
        for rel, data in keys.items():
            got = committed.committed(v, rel)
            if got is None or got[0] != packs.sha256_hex(data):
                files[rel] = data
        for rel in authority.state(v)["files"]:
            if rel.startswith("keys/") and rel not in keys and committed.exists(v, rel):
                files[rel] = None  # a key release, or a table destroyed since the snapshot
        if files:
            actor.commit("vault.restore", files)
    return sorted(files)


def _get_generation(repo: Repo, gen: mirror.Generation) -> bytes:
    data = repo.get(gen.name)
    if packs.sha256_hex(data) != gen.sha256:
        raise IntegrityError(N_("{url}: {name} is damaged"), url=repo.url, name=gen.name)
    return data


def _choose_generation(repo: Repo, gens: list[mirror.Generation], sha_then: str,
                       ids: Sequence[age.Identity]) -> bytes | None:
    """The newest generation the snapshot's rings open: what a destruction removed stays removed.

    The latest generation is preferred (it lacks every key shredded since). Only if a ring rotation
    since the snapshot keeps the snapshot's rings out of it is the snapshot's own generation used, if
    the window still holds it.
    """
    newest = gens[-1]
    data = _get_generation(repo, newest)
    if newest.sha256 == sha_then or _opens(data, ids):
        return data
    for gen in reversed(gens[:-1]):
        if gen.sha256 == sha_then:
            return _get_generation(repo, gen)
    return None


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, data, mode=mode & 0o777, sync=False)
