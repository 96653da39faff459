"""The sealed search index under ``index/search/``: opening it — a signed head binding sealed shards, then the deltas.

Every file is an age file to the *index recipient* (``searchseal``). The index is split into gram
shards (postings, by a keyed hash of the n-gram) and dossier shards (rows, by dossier id), each its
own padded age file, so a query decrypts only the shards of its n-grams and of the rows it shows.
The signed head names every shard file with the SHA-256 of its bytes: a shard swapped, replayed or
moved is refused. Deltas written since the head are applied on top, for queries only; writing the
index (``searchwrite``) folds them into the shards when they pile up. See docs/FORMAT.md §11.

The index key, the recipient record, the head, every shard and every delta are history records
(``keyfiles``): each is staged and committed by the entry of the change that uses it, and read only
as the history names it, so an older file put back — the whole index, one shard or the key — is
named by ``vault check`` and never used. The head's per-shard SHA-256 is checked as well.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vault.archive import keyfiles
from vault.archive.searchseal import (DELTAS, HEAD, KINDS, REBUILD_HINT, index_identity, open_signed, read_file,
                                      read_key, read_recipient, rel, search_dir)
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError
from vault.i18n import N_
from vault.store.searchdb import Loader, SearchDB, unpack
from vault.store import read_regular

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


@dataclass
class Index:
    """An opened index: the engine over its shards (deltas applied on top), and what a save replaces."""

    db: SearchDB
    key: bytes
    through: int
    files: dict[str, list[str]] = field(default_factory=dict)  # "g<n>" / "d<n>" -> [relative path, sha256]
    deltas: list[Path] = field(default_factory=list)
    count: int = 0  # dossiers in the shards, as the head says
    head_sha: str = ""

    def live_count(self) -> int:
        """Dossiers the index holds: the head's count plus dossiers that only deltas hold so far."""
        return self.count + sum(1 for _ in self.db.overlay_new())


def delta_paths(v: Vault) -> list[tuple[int, Path]]:
    """The deltas the history names (with this command's staging), in sequence order."""
    out = []
    for r in keyfiles.listing(v, DELTAS):
        stem = r[len(DELTAS):].removesuffix(".age")
        if stem.isdigit() and "/" not in stem:
            out.append((int(stem), v.root / r))
    return sorted(out)


def _loader(v: Vault, files: dict[str, list[str]], ident: age.Identity) -> Loader:
    def load(kind: str, n: int) -> bytes | None:
        ent = files.get(f"{kind}{n}")
        if ent is None:
            return None
        what = ent[0]
        if not keyfiles.exists(v, what):
            raise IntegrityError(N_("{what}: missing (the index head names it)"), hint=REBUILD_HINT, what=what)
        data = read_file(v, what)
        if hashlib.sha256(data).hexdigest() != ent[1]:
            raise IntegrityError(N_("{what}: not the shard the index head names (swapped, replayed or damaged)"), what=what,
                                 hint=REBUILD_HINT)
        try:
            header, body = unpack(age.decrypt_bytes(data, [ident]))
        except (NoIdentityMatchError, FormatError, AuthenticationError):
            raise IntegrityError(N_("{what}: damaged or tampered with"), hint=REBUILD_HINT, what=what) from None
        if header.get("kind") != KINDS[kind] or header.get("shard") != n:
            raise IntegrityError(N_("{what}: holds another shard"), hint=REBUILD_HINT, what=what)
        return body
    return load


def open_index(actor: Actor, *, key: bytes | None = None) -> Index | None:
    """The index for a member holding the index key; None if it was never built (in this format).

    PermissionDeniedError for a member outside the archive department (no index key).
    """
    v = actor.vault
    key = key or read_key(v, actor.read_identities())
    ident = index_identity(key)
    head = search_dir(v.root) / "head.age"
    if not keyfiles.exists(v, HEAD):
        return None
    rcpt = read_recipient(v)
    # (compared as bytes: writing a 1,216-byte hybrid key out in Bech32 costs more than the query)
    if rcpt is None or getattr(rcpt, "public", None) != ident.public:
        raise IntegrityError(N_("index/search/recipient.toml: does not match the index key"), hint=REBUILD_HINT)
    head_sha = hashlib.sha256(read_file(v, HEAD)).hexdigest()
    h, body = open_signed(v, head, ident, "head", ("dossier.read",))
    try:
        files = json.loads(body)
        if not isinstance(files, dict) or not all(isinstance(x, list) and len(x) == 2 for x in files.values()):
            raise ValueError
    except ValueError:
        raise IntegrityError(N_("index/search/head.age: damaged"), hint=REBUILD_HINT) from None
    try:
        # (a head of an earlier version, without ``sorted``: its postings are sorted as they are read)
        db = SearchDB(_loader(v, files, ident), bucket_key=bytes.fromhex(h["bucket"]), grams=int(h["grams"]),
                      dossiers=int(h["dossier_shards"]), ordered=h.get("sorted") is True)
    except (KeyError, ValueError, TypeError):
        raise IntegrityError(N_("index/search/head.age: damaged"), hint=REBUILD_HINT) from None
    if db.n_grams < 1 or db.n_dossiers < 1 or len(db.bucket_key) != 32:
        raise IntegrityError(N_("index/search/head.age: damaged"), hint=REBUILD_HINT)
    idx = Index(db, key, int(h.get("through", 0)), files, count=int(h.get("dossiers", 0)), head_sha=head_sha)
    for seq, p in delta_paths(v):
        if seq <= idx.through:
            continue  # merged already; left by a merge that was interrupted
        dh, body = open_signed(v, p, ident, "delta", ("dossier.update", "dossier.create"))
        if dh.get("seq") != seq:
            raise IntegrityError(N_("{rel}: holds delta {seq}"), hint=REBUILD_HINT, rel=rel(v.root, p), seq=dh.get("seq"))
        for put in json.loads(body).get("put", []):
            db.overlay_put(put["dossier"], number=put["number"], version=put["version"],
                           sealed_sha256=put["sealed_sha256"], by=dh["by"], profile=put["profile"])
        idx.deltas.append(p)
    return idx


def moved(v: Vault, idx: Index) -> bool:
    """True if the head changed since ``idx`` was opened (a merge ran meanwhile and swept its shards)."""
    try:
        return hashlib.sha256(read_regular(v.root / HEAD)).hexdigest() != idx.head_sha
    except FileNotFoundError:
        return True
