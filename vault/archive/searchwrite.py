"""Writing the search index: a delta per profile write, the shards and head on a merge or build, and key rotation.

Writing a profile needs only the recipient (a signed record): a liaison who updates a dossier
through a grant — and holds no index key — appends one small padded delta in the same command.
Deltas are merged into the shards they touch when they pile up. Destroying a dossier removes its
postings from every shard and rotates the index key, re-sealing every shard, so no file written
before opens with a key that still exists. Everything is staged (``keyfiles``) for the entry of the
change that uses it. See docs/FORMAT.md §11.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from vault.archive import committed, keyfiles, numbering
from vault.archive.manifestrecord import Manifest
from vault.archive.searchindex import Index, delta_paths, open_index
from vault.archive.searchseal import (DELTAS, HEAD, KINDS, LEFTOVERS, LEGACY, index_recipient, read_key, read_recipient, rel,
                                      seal, search_dir, sealed_digest, stage_key, write_recipient)
from vault.crypto import age
from vault.store.searchdb import DOSSIER_SHARDS, GRAM_SHARDS, SearchDB, pack
from vault.store.searchshards import padded
from vault.store import fsync_dir, make_dir, remove, remove_tree

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

#: Deltas are padded to a multiple of this many bytes, so a delta's size hides the lengths of the values.
DELTA_PAD = 1024
#: Merge the deltas into the shards once this many have piled up.
MERGE_AFTER = 64


def add_profile(actor: Actor, m: Manifest, profile: Mapping[str, Any]) -> bool:
    """Record a dossier's newest profile version (call under the exclusive lock, before the manifest
    is written). Needs no index key. False when the index was never built: the build reads the
    sealed profiles, so nothing is lost."""
    v = actor.vault
    rcpt = read_recipient(v)
    if rcpt is None:
        return False
    p = m.profile[-1]
    put = {"dossier": m.id, "number": m.number, "version": p.version,
           "sealed_sha256": sealed_digest(p.sealed or ""), "profile": dict(profile)}
    body = json.dumps({"put": [put]}, sort_keys=True, ensure_ascii=False).encode()
    body += b" " * (-len(body) % DELTA_PAD)
    make_dir(search_dir(v.root) / "delta", parents=True)
    seq = numbering.next_delta(v)
    keyfiles.stage(v, f"{DELTAS}{seq:010d}.age", seal(actor, rcpt, {"kind": "delta", "seq": seq}, body))
    return True


def _write_shards(actor: Actor, idx: Index, rcpt: age.Recipient, which: Iterable[tuple[str, int]]) -> dict[str, list[str]]:
    """Seal the given shards to new files (new names: the old ones stay valid until the head moves),
    staged for the entry that commits the head naming them."""
    v = actor.vault
    files = dict(idx.files)
    for kind, n in sorted(which):
        shard = idx.db._gs(n) if kind == "g" else idx.db._ds(n)
        name = f"index/search/{kind}/{n:04d}.{secrets.token_hex(4)}.age"
        data = age.encrypt_bytes(padded(pack({"kind": KINDS[kind], "shard": n}, shard.body())), [rcpt])
        make_dir((v.root / name).parent, parents=True)
        keyfiles.stage(v, name, data)
        files[f"{kind}{n}"] = [name, hashlib.sha256(data).hexdigest()]
    return files


def save(actor: Actor, idx: Index, *, key: bytes | None = None) -> None:
    """Write the shards ``idx`` changed (or all, for a new index) and the head naming them, to the
    recipient of ``key`` (default the current one); delete what the head no longer names and the
    deltas it holds, all staged for the command's next entry. Call under the exclusive lock."""
    v = actor.vault
    key = key or idx.key
    rcpt = index_recipient(key)
    through = _newest_delta(v)
    idx.db.materialize()
    # A new index, or one whose shards an earlier version wrote (postings not in order): every shard.
    which = set(idx.db.dirty) if idx.files and idx.db.ordered else _all_shards(idx.db)
    files = _write_shards(actor, idx, rcpt, which)
    idx.count = (idx.count if idx.files else 0) + idx.db.grown  # without reading every dossier shard
    idx.db.grown = 0
    keyfiles.stage(v, HEAD, _head_sealed(actor, idx, rcpt, files, through))
    idx.files, idx.db.dirty, idx.db.ordered = files, set(), True
    _sweep(v, files)
    _drop_deltas(v, through)


def _head_sealed(actor: Actor, idx: Index, rcpt: age.Recipient, files: dict, through: int) -> bytes:
    h = {"kind": "head", "through": through, "grams": idx.db.n_grams, "dossier_shards": idx.db.n_dossiers,
         "dossiers": idx.count, "bucket": idx.db.bucket_key.hex(), "sorted": True}
    return seal(actor, rcpt, h, json.dumps(files, sort_keys=True, separators=(",", ":")).encode())


def _sweep(v: Vault, files: Mapping[str, list[str]]) -> None:
    """Delete (with the same entry) the shard files the history names and the new head does not."""
    named = {p for p, _ in files.values()}
    for kind in ("g", "d"):
        known = keyfiles.listing(v, f"index/search/{kind}/")
        for r in known:
            if r not in named:
                keyfiles.stage(v, r, None)
        # A file no entry names (dropped in by hand) is never read; it goes now.
        d = search_dir(v.root) / kind
        for p in d.glob("*.age") if d.is_dir() else []:
            r = rel(v.root, p)
            if r not in known and r not in named:
                remove(p)
    for old in LEGACY:
        if keyfiles.exists(v, old):
            keyfiles.stage(v, old, None)


def sweep_orphans(actor: Actor) -> list[str]:
    """``vault repair``: delete the shard files no history entry names — dropped in by hand, or left
    by an earlier version's interrupted index write (this one stages them with the entry that names
    them, so an interrupted one is dropped by the recovery) — which ``check`` names, and the
    ``LEFTOVERS`` of an earlier version's index write, which it notes; readers never open them.
    Returns them. Needs no key."""
    v = actor.vault
    out = []
    top = search_dir(v.root)
    left = [p for p in (top / n for n in LEFTOVERS) if p.is_file() and remove(p)]
    out += [rel(v.root, p) for p in left]
    if left:
        fsync_dir(top)
    for kind in ("g", "d"):
        d = top / kind
        gone = False
        for p in sorted(d.glob("*.age")) if d.is_dir() else []:
            r = rel(v.root, p)
            if not committed.exists(v, r):
                remove(p)
                out.append(r)
                gone = True
        if gone:
            fsync_dir(d)
    return out


def _newest_delta(v: Vault) -> int:
    """The highest delta sequence number the history names (0 if none)."""
    return max((seq for seq, _ in delta_paths(v)), default=0)


def _drop_deltas(v: Vault, through: int) -> None:
    for seq, p in delta_paths(v):
        if seq <= through:
            keyfiles.stage(v, f"{DELTAS}{p.name}", None)


def build(actor: Actor, items: Iterable[tuple[Manifest, Mapping[str, Any]]]) -> int:
    """Build the index afresh from (manifest, profile) pairs; returns how many dossiers it holds.

    Call under the exclusive lock. Removes the blind indexes of earlier versions, whose tokens told
    anyone with the directory which dossiers share a name or contact.
    """
    v = actor.vault
    key = read_key(v, actor.read_identities())
    db = new_db()
    for m, profile in items:
        p = m.profile[-1]
        db.put(m.id, number=m.number, version=p.version, sealed_sha256=sealed_digest(p.sealed or ""),
               by=p.by, profile=profile)
    write_recipient(actor, key)
    idx = Index(db, key, 0)
    save(actor, idx)
    blind = v.root / "index" / "blind"
    if blind.is_dir():
        remove_tree(blind)
        fsync_dir(blind.parent)
    return idx.count


def new_db() -> SearchDB:
    """An empty index; n-grams are spread over the gram shards by a keyed hash under a new secret
    (kept in the sealed head), so a shard's number says nothing of the n-grams it holds."""
    return SearchDB(bucket_key=secrets.token_bytes(32), grams=GRAM_SHARDS, dossiers=DOSSIER_SHARDS)


def merge_if_due(actor: Actor, idx: Index) -> Index | None:
    """Fold the deltas into the shards once ``MERGE_AFTER`` have piled up (takes the exclusive lock);
    the index as merged, or None when no merge was due."""
    if len(idx.deltas) < MERGE_AFTER:
        return None
    with actor.vault.lock(exclusive=True):
        fresh = open_index(actor)
        if fresh is not None:
            save(actor, fresh)
            actor.audit("index.rebuild")  # the entry that commits the merged shards and head
    return fresh


def forget(actor: Actor, dossier_id: str) -> None:
    """Remove a dossier from the index for its destruction (call under the exclusive lock).

    Its postings go from every shard, the deltas are folded in and deleted, and the index key is
    rotated (``rekey``): every shard is re-sealed, so copies of earlier index files (in backups)
    are encrypted to a key that no longer exists once its mirrored generations are shredded.
    """
    v = actor.vault
    idx = open_index(actor)
    blind = v.root / "index" / "blind"
    if blind.is_dir():
        remove_tree(blind)
    if idx is None:
        return
    idx.db.materialize()
    idx.db.remove(dossier_id)
    rekey(actor, idx, os.urandom(32))


def stage_rotation(actor: Actor, identities: list, recipients: list) -> None:
    """A new index key for a member removal (call under the exclusive lock): the key, encrypted to
    the new rings' ``recipients``, and the index re-sealed to it (new shard files, re-spread by a new
    secret) are staged (``keyfiles``) for the removal's one entry, which names them all by hash: an
    interruption before it leaves the old index in force, whole; one after it leaves them for the
    recovery to put in place (FORMAT §18.5). A former member who kept the old key opens nothing
    written after.

    :param identities: identities that open ``keys/_index.age`` now.
    """
    v = actor.vault
    key = read_key(v, identities)
    idx = open_index(actor, key=key)
    if idx is None:
        stage_key(v, os.urandom(32), recipients)
        return
    rekey(actor, idx, os.urandom(32), recipients, rebucket=True)


def rekey(actor: Actor, idx: Index, new_key: bytes, recipients: list | None = None, *, rebucket: bool = False) -> None:
    """Replace the index key with ``new_key`` and re-seal every shard to it (call under the exclusive
    lock). Every shard, the head, the key and the recipient, and the deletion of the superseded
    shards and merged deltas, are staged together (``keyfiles``): the entry that commits the caller's
    change commits them all, and an interruption before it leaves the old index in force, whole. With
    ``rebucket`` (a member left) the n-grams are also spread over the gram shards by a new secret,
    so what the leaver knew of the old spread says nothing of later changes."""
    v = actor.vault
    idx.db.materialize()
    old = idx.db
    old.load_all()
    db = old
    if rebucket:
        db = SearchDB(bucket_key=secrets.token_bytes(32), grams=old.n_grams, dossiers=old.n_dossiers)
        for dossier, row, ents in old.rows():
            db.put_row(dossier, row, ents)
    rcpt = index_recipient(new_key)
    through = _newest_delta(v)
    nidx = Index(db, new_key, through)
    files = _write_shards(actor, nidx, rcpt, _all_shards(db))
    nidx.count = len(db.ids())  # (every dossier shard is loaded for the re-sealing anyway)
    keyfiles.stage(v, HEAD, _head_sealed(actor, nidx, rcpt, files, through))
    stage_key(v, new_key, recipients)
    write_recipient(actor, new_key)
    _sweep(v, files)
    _drop_deltas(v, through)


def _all_shards(db: SearchDB) -> set[tuple[str, int]]:
    return {(k, n) for k, c in (("g", db.n_grams), ("d", db.n_dossiers)) for n in range(c)}
