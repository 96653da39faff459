"""The sealed search index under ``index/search/``: a signed head binding sealed shards, and signed deltas.

Every file is an age file to the *index recipient*, a hybrid post-quantum identity derived from
the 32-byte index key in ``keys/_index.age``. The index is split into gram shards (postings, by a
keyed hash of the n-gram) and dossier shards (rows, by dossier id), each its own padded age file,
so a query decrypts only the shards of its n-grams and of the rows it shows. The signed head names
every shard file with the SHA-256 of its bytes: a shard swapped, replayed or moved is refused.
Writing a profile needs only the recipient (a signed record): a liaison who updates a dossier
through a grant — and holds no index key — appends one small padded delta in the same command;
reading needs the key. Deltas are merged into the shards they touch when they pile up.
Destroying a dossier removes its postings from every shard and rotates the index key, re-sealing
every shard, so no file written before opens with a key that still exists. See docs/FORMAT.md §11.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from vault import clock
from vault.archive import authority, members
from vault.store import make_dir, index, records
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError, PermissionDeniedError
from vault.i18n import N_
from vault.store.searchdb import DOSSIER_SHARDS, GRAM_SHARDS, SearchDB, pack, unpack
from vault.store.searchshards import padded
from vault.store import fsync_dir, remove, remove_tree, replace, sync_files, write_atomic, write_new

IDENTITY_LABEL = b"vault-search-identity-v1"
#: Deltas are padded to a multiple of this many bytes, so a delta's size hides the lengths of the values.
DELTA_PAD = 1024
#: Merge the deltas into the shards once this many have piled up.
MERGE_AFTER = 64
REBUILD_HINT = N_("run 'vault index rebuild' (an archive member rebuilds it from the sealed profiles)")
KINDS = {"g": "gram", "d": "dossier"}


def search_dir(root: Path) -> Path:
    return root / "index" / "search"


def rel(root: Path, p: Path) -> str:
    return str(p.relative_to(root))


def index_identity(key: bytes):
    """The index identity: its 32-byte seed is HMAC-SHA-256(index key, label)."""
    return age.identity_from_seed(hmac.new(key, IDENTITY_LABEL, hashlib.sha256).digest())


def identity_text(key: bytes) -> str:
    return str(index_identity(key))


def index_recipient(key: bytes) -> age.Recipient:
    return index_identity(key).recipient()


def sealed_digest(sealed: str) -> str:
    """What the index records of a profile version: hex SHA-256 of its ``sealed`` string."""
    return hashlib.sha256(sealed.encode()).hexdigest()


def read_recipient(v) -> age.Recipient | None:
    """The index recipient, from its record signed by an active archive member; None if never built."""
    p = search_dir(v.root) / "recipient.toml"
    what = "index/search/recipient.toml"
    if not p.exists():
        if (search_dir(v.root) / "head.age").exists():
            raise IntegrityError(N_("{what}: missing"), hint=REBUILD_HINT, what=what)
        return None
    rec = records.load_toml(p, schema="search", what=what)
    signer = members.verify_by_member(v, rec, what=what)
    # Whoever could sign this record could have deltas encrypted to a key of their own: only an
    # active member of the archive department may (a former one could otherwise read updates).
    if signer["status"] != "active" or not v.policy.may(signer["roles"], "dossier.read") or rec["by"] != signer["name"]:
        raise IntegrityError(N_("{what}: not signed by an active member of the archive department"), hint=REBUILD_HINT, what=what)
    return age.parse_recipient(rec["recipient"])


def _write_recipient(actor, key: bytes) -> None:
    rcpt = str(index_recipient(key))
    rec = actor.sign({"format": 1, "recipient": rcpt, "at": clock.stamp(), "by": actor.name})
    records.validate(rec, "search", what="index/search/recipient.toml")
    make_dir(search_dir(actor.vault.root), parents=True)
    records.write_toml(search_dir(actor.vault.root) / "recipient.toml", rec)


def _seal(actor, rcpt: age.Recipient, header: dict[str, Any], body: bytes) -> bytes:
    header = actor.sign({**header, "format": 1, "body_sha256": hashlib.sha256(body).hexdigest(),
                         "by": actor.name, "at": clock.stamp()})
    return age.encrypt_bytes(pack(header, body), [rcpt])


def _decrypt(path: Path, what: str, ident: age.Identity) -> bytes:
    try:
        return age.decrypt_bytes(path.read_bytes(), [ident])
    except NoIdentityMatchError:
        raise IntegrityError(N_("{what}: not encrypted to the current index key"), hint=REBUILD_HINT, what=what) from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("{what}: damaged or tampered with"), hint=REBUILD_HINT, what=what) from None


def _signer(v, header: dict, what: str) -> dict[str, Any]:
    """The member who signed ``header``, verified (as ``members.verify_by_member``, with each member's
    key decoded once per process: a query may open dozens of deltas)."""
    sig = header.get("signature")
    signer = members.all_members(v).get(sig.get("by") if isinstance(sig, dict) else None)  # type: ignore[arg-type]
    if signer is None:
        raise IntegrityError(N_("{what}: signed by an unknown member"), what=what)
    records.verify_record(header, authority.signing_key(signer["key"]), what=what)
    return signer


def _open(v, path: Path, ident: age.Identity, kind: str, may: tuple[str, ...]) -> tuple[dict, bytes]:
    """Decrypt and verify one signed index file (head or delta); IntegrityError names it otherwise."""
    what = rel(v.root, path)
    try:
        header, body = unpack(_decrypt(path, what, ident))
    except FormatError:
        raise IntegrityError(N_("{what}: damaged or tampered with"), hint=REBUILD_HINT, what=what) from None
    try:
        signer = _signer(v, header, what)
    except (IntegrityError, KeyError, TypeError):
        raise IntegrityError(N_("{what}: bad signature (tampered or damaged)"), hint=REBUILD_HINT, what=what) from None
    if header.get("kind") != kind or header.get("by") != signer["name"] \
            or not any(v.policy.may(signer["roles"], a) for a in may) \
            or header.get("body_sha256") != hashlib.sha256(body).hexdigest():
        raise IntegrityError(N_("{what}: not a {kind} its signer {name} could write"), hint=REBUILD_HINT, what=what, kind=kind,
                             name=signer["name"])
    return header, body


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


def _delta_paths(root: Path) -> list[tuple[int, Path]]:
    d = search_dir(root) / "delta"
    out = []
    for p in d.glob("*.age") if d.is_dir() else []:
        if p.stem.isdigit():
            out.append((int(p.stem), p))
    return sorted(out)


def _loader(v, files: dict[str, list[str]], ident: age.Identity):
    def load(kind: str, n: int) -> bytes | None:
        ent = files.get(f"{kind}{n}")
        if ent is None:
            return None
        path, what = v.root / ent[0], ent[0]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(N_("{what}: missing (the index head names it)"), hint=REBUILD_HINT, what=what) from None
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


def open_index(actor, *, key: bytes | None = None) -> Index | None:
    """The index for a member holding the index key; None if it was never built (in this format).

    PermissionDeniedError for a member outside the archive department (no index key).
    """
    v = actor.vault
    key = key or index.read_index_key(v.root, actor.read_identities())
    ident = index_identity(key)
    head = search_dir(v.root) / "head.age"
    _finish_rotation(actor, key, ident)
    if not head.exists():
        return None
    rcpt = read_recipient(v)
    # (compared as bytes: writing a 1,216-byte hybrid key out in Bech32 costs more than the query)
    if rcpt is None or getattr(rcpt, "public", None) != ident.public:
        raise IntegrityError(N_("index/search/recipient.toml: does not match the index key"), hint=REBUILD_HINT)
    head_sha = hashlib.sha256(head.read_bytes()).hexdigest()
    h, body = _open(v, head, ident, "head", ("dossier.read",))
    try:
        files = json.loads(body)
        if not isinstance(files, dict) or not all(isinstance(x, list) and len(x) == 2 for x in files.values()):
            raise ValueError
    except ValueError:
        raise IntegrityError(N_("index/search/head.age: damaged"), hint=REBUILD_HINT) from None
    try:
        db = SearchDB(_loader(v, files, ident), bucket_key=bytes.fromhex(h["bucket"]), grams=int(h["grams"]),
                      dossiers=int(h["dossier_shards"]))
    except (KeyError, ValueError, TypeError):
        raise IntegrityError(N_("index/search/head.age: damaged"), hint=REBUILD_HINT) from None
    if db.n_grams < 1 or db.n_dossiers < 1 or len(db.bucket_key) != 32:
        raise IntegrityError(N_("index/search/head.age: damaged"), hint=REBUILD_HINT)
    idx = Index(db, key, int(h.get("through", 0)), files, count=int(h.get("dossiers", 0)), head_sha=head_sha)
    for seq, p in _delta_paths(v.root):
        if seq <= idx.through:
            continue  # merged already; left by a merge that was interrupted
        dh, body = _open(v, p, ident, "delta", ("dossier.update", "dossier.create"))
        if dh.get("seq") != seq:
            raise IntegrityError(N_("{rel}: holds delta {seq}"), hint=REBUILD_HINT, rel=rel(v.root, p), seq=dh.get("seq"))
        for put in json.loads(body).get("put", []):
            db.overlay_put(put["dossier"], number=put["number"], version=put["version"],
                           sealed_sha256=put["sealed_sha256"], by=dh["by"], profile=put["profile"])
        idx.deltas.append(p)
    return idx


def add_profile(actor, m: Mapping[str, Any], profile: Mapping[str, Any]) -> bool:
    """Record a dossier's newest profile version (call under the exclusive lock, before the manifest
    is written). Needs no index key. False when the index was never built: the build reads the
    sealed profiles, so nothing is lost."""
    v = actor.vault
    rcpt = read_recipient(v)
    if rcpt is None:
        return False
    p = m["profile"][-1]
    put = {"dossier": m["id"], "number": m["number"], "version": p["version"],
           "sealed_sha256": sealed_digest(p["sealed"]), "profile": dict(profile)}
    body = json.dumps({"put": [put]}, sort_keys=True, ensure_ascii=False).encode()
    body += b" " * (-len(body) % DELTA_PAD)
    make_dir((search_dir(v.root) / "delta"), parents=True)
    seq = index.next_sequence(v.root, "search/sequence")
    path = search_dir(v.root) / "delta" / f"{seq:010d}.age"
    write_new(path, _seal(actor, rcpt, {"kind": "delta", "seq": seq}, body))
    fsync_dir(path.parent)
    return True


def _write_shards(actor, idx: Index, rcpt: age.Recipient, which: Iterable[tuple[str, int]]) -> dict[str, list[str]]:
    """Seal the given shards to new files (new names: the old ones stay valid until the head moves)."""
    v = actor.vault
    files = dict(idx.files)
    written = []
    for kind, n in sorted(which):
        shard = idx.db._gs(n) if kind == "g" else idx.db._ds(n)
        name = f"index/search/{kind}/{n:04d}.{secrets.token_hex(4)}.age"
        plain = padded(pack({"kind": KINDS[kind], "shard": n}, shard.body()))
        write_new(v.root / name, age.encrypt_bytes(plain, [rcpt]))
        written.append(v.root / name)
        files[f"{kind}{n}"] = [name, hashlib.sha256((v.root / name).read_bytes()).hexdigest()]
    sync_files(written)
    for d in {p.parent for p in written}:
        fsync_dir(d)
    return files


def save(actor, idx: Index, *, key: bytes | None = None) -> None:
    """Write the shards ``idx`` changed (or all, for a new index) and the head naming them, to the
    recipient of ``key`` (default the current one); delete what the head no longer names and the
    deltas it holds. Call under the exclusive lock."""
    v = actor.vault
    key = key or idx.key
    rcpt = index_recipient(key)
    through = index.peek_sequence(v.root, "search/sequence") - 1
    idx.db.materialize()
    which = set(idx.db.dirty) if idx.files else _all_shards(idx.db)
    files = _write_shards(actor, idx, rcpt, which)
    idx.count = (idx.count if idx.files else 0) + idx.db.grown  # without reading every dossier shard
    idx.db.grown = 0
    write_atomic(search_dir(v.root) / "head.age", _head_sealed(actor, idx, rcpt, files, through))
    idx.files, idx.db.dirty = files, set()
    _sweep(v.root, files)
    _drop_deltas(v.root, through)


def _head_sealed(actor, idx: Index, rcpt: age.Recipient, files: dict, through: int) -> bytes:
    h = {"kind": "head", "through": through, "grams": idx.db.n_grams, "dossier_shards": idx.db.n_dossiers,
         "dossiers": idx.count, "bucket": idx.db.bucket_key.hex()}
    return _seal(actor, rcpt, h, json.dumps(files, sort_keys=True, separators=(",", ":")).encode())


def _sweep(root: Path, files: Mapping[str, list[str]]) -> list[str]:
    """Delete shard files the head does not name (superseded, or left by an interrupted write);
    returns what it deleted."""
    named = {p for p, _ in files.values()}
    out = []
    for kind in ("g", "d"):
        d = search_dir(root) / kind
        gone = False
        for p in sorted(d.glob("*.age")) if d.is_dir() else []:
            if rel(root, p) not in named:
                remove(p)
                out.append(rel(root, p))
                gone = True
        if gone:
            fsync_dir(d)
    for old in ("base.age", "base.next.age"):  # the single-file index of an earlier version
        if remove(search_dir(root) / old, missing_ok=True):
            out.append(rel(root, search_dir(root) / old))
    return out


def orphans(v, idx: Index | None) -> list[str]:
    """Shard files that the head of ``idx`` (None: no head, so every one) does not name."""
    named = {p for p, _ in idx.files.values()} if idx is not None else set()
    return [rel(v.root, p) for kind in ("g", "d") for p in sorted((search_dir(v.root) / kind).glob("*.age"))
            if rel(v.root, p) not in named]


def sweep_orphans(actor) -> list[str]:
    """``vault repair``: delete the shard files no head names — what an interrupted save, rebuild or
    key rotation (a member removal stopped before its entry) left — under the exclusive lock, with
    the index key; returns them. An index that does not open is left to ``check`` and a rebuild."""
    v = actor.vault
    if not search_dir(v.root).is_dir():
        return []
    try:
        idx = open_index(actor)  # (finishes a rotation the history committed, drops one it did not)
    except (PermissionDeniedError, IntegrityError):
        return []
    return _sweep(v.root, idx.files if idx is not None else {})


def _drop_deltas(root: Path, through: int) -> None:
    dropped = False
    for seq, p in _delta_paths(root):
        if seq <= through:
            remove(p)
            dropped = True
    if dropped:
        fsync_dir(search_dir(root) / "delta")


def build(actor, items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> int:
    """Build the index afresh from (manifest, profile) pairs; returns how many dossiers it holds.

    Call under the exclusive lock. Removes the blind indexes of earlier versions, whose tokens told
    anyone with the directory which dossiers share a name or contact.
    """
    v = actor.vault
    key = index.read_index_key(v.root, actor.read_identities())
    db = new_db()
    for m, profile in items:
        p = m["profile"][-1]
        db.put(m["id"], number=m["number"], version=p["version"], sealed_sha256=sealed_digest(p["sealed"]),
               by=p["by"], profile=profile)
    _write_recipient(actor, key)
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


def merge_if_due(actor, idx: Index) -> Index | None:
    """Fold the deltas into the shards once ``MERGE_AFTER`` have piled up (takes the exclusive lock);
    the index as merged, or None when no merge was due."""
    if len(idx.deltas) < MERGE_AFTER:
        return None
    with actor.vault.lock(exclusive=True):
        fresh = open_index(actor)
        if fresh is not None:
            save(actor, fresh)
    return fresh


def moved(v, idx: Index) -> bool:
    """True if the head changed since ``idx`` was opened (a merge ran meanwhile and swept its shards)."""
    try:
        return hashlib.sha256((search_dir(v.root) / "head.age").read_bytes()).hexdigest() != idx.head_sha
    except FileNotFoundError:
        return True


def forget(actor, dossier_id: str) -> None:
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


def stage_rotation(actor, identities: list, recipients: list) -> bytes:
    """A new index key for a member removal: returns ``keys/_index.age`` for the removal's commit
    (the new key, encrypted to the new rings' ``recipients``) and writes the index re-sealed to it
    (new shard files, re-spread by a new secret, and ``head.next.age`` naming them), which
    ``open_index`` puts in place once that key is the one in force (and drops if the commit never
    happened: it does not open with the old key; the next save sweeps the shards no head names)."""
    v = actor.vault
    key = index.read_index_key(v.root, identities)
    new_key = os.urandom(32)
    idx = open_index(actor, key=key)
    if idx is not None:
        _seal_next(actor, idx, new_key, rebucket=True)
    return age.encrypt_bytes(new_key, recipients)


def rekey(actor, idx: Index, new_key: bytes, recipients: list | None = None, *, rebucket: bool = False) -> None:
    """Replace the index key with ``new_key`` and re-seal every shard to it (call under the exclusive
    lock). Order: every shard to a new file and the new head to ``head.next.age``, then the new key,
    then the recipient, then the rename — an interrupted run is finished by the next
    ``open_index`` (see ``_finish_rotation``), or undone if the key was not replaced yet. With
    ``rebucket`` the n-grams are also spread over the gram shards by a new secret."""
    v = actor.vault
    d = search_dir(v.root)
    files, through = _seal_next(actor, idx, new_key, rebucket=rebucket)
    index.write_index_key(v.root, new_key, recipients or members.ring_recipients(v))
    _write_recipient(actor, new_key)
    replace(d / "head.next.age", d / "head.age")
    fsync_dir(d)
    _sweep(v.root, files)
    _drop_deltas(v.root, through)


def _seal_next(actor, idx: Index, new_key: bytes, *, rebucket: bool) -> tuple[dict[str, list[str]], int]:
    """Seal every shard of ``idx`` to ``new_key`` as new files and the head naming them to
    ``head.next.age`` (the head in force and its shards stay valid until the rename); returns the
    new head's files and the last delta it holds. With ``rebucket`` (a member left) the n-grams are
    spread over the gram shards by a new secret, so what the leaver knew of the old spread says
    nothing of later changes."""
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
    through = index.peek_sequence(v.root, "search/sequence") - 1
    nidx = Index(db, new_key, through)
    files = _write_shards(actor, nidx, rcpt, _all_shards(db))
    nidx.count = len(db.ids())  # (every dossier shard is loaded for the re-sealing anyway)
    write_atomic(search_dir(v.root) / "head.next.age", _head_sealed(actor, nidx, rcpt, files, through))
    return files, through


def _all_shards(db: SearchDB) -> set[tuple[str, int]]:
    return {(k, n) for k, c in (("g", db.n_grams), ("d", db.n_dossiers)) for n in range(c)}


def _finish_rotation(actor, key: bytes, ident: age.Identity) -> None:
    """Complete a rotation that ``rekey`` began: ``head.next.age`` opens with the current key."""
    d = search_dir(actor.vault.root)
    nxt = d / "head.next.age"
    if not nxt.exists():
        return
    # No lock taken here: the caller may hold it already, and each step is atomic and idempotent.
    try:
        header, body = _open(actor.vault, nxt, ident, "head", ("dossier.read",))
    except IntegrityError:
        remove(nxt)  # the key was not replaced yet: the old head still holds (the destruction reruns)
        return
    _write_recipient(actor, key)
    replace(nxt, d / "head.age")
    fsync_dir(d)
    _sweep(actor.vault.root, json.loads(body))
    _drop_deltas(actor.vault.root, int(header.get("through", 0)))
