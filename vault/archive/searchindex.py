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

The index key, the recipient record, the head, every shard and every delta are history records
(``keyfiles``): each is staged and committed by the entry of the change that uses it, and read only
as the history names it, so an older file put back — the whole index, one shard or the key — is
named by ``vault check`` and never used. The head's per-shard SHA-256 is checked as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from vault.archive import authority, keyfiles, members, numbering
from vault.store import index, records
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError
from vault.i18n import N_
from vault.store.searchdb import DOSSIER_SHARDS, GRAM_SHARDS, SearchDB, pack, unpack
from vault.store.searchshards import padded
from vault.store import fsync_dir, make_dir, remove, remove_tree

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

IDENTITY_LABEL = b"vault-search-identity-v1"
#: Deltas are padded to a multiple of this many bytes, so a delta's size hides the lengths of the values.
DELTA_PAD = 1024
#: Merge the deltas into the shards once this many have piled up.
MERGE_AFTER = 64
REBUILD_HINT = N_("run 'vault index rebuild' (an archive member rebuilds it from the sealed profiles)")
KINDS = {"g": "gram", "d": "dossier"}

KEY = "keys/_index.age"
RECIPIENT = "index/search/recipient.toml"
HEAD = "index/search/head.age"
DELTAS = "index/search/delta/"
LEGACY = ("index/search/base.age",)  # the single-file index of an earlier version


def read_key(v: Vault, identities: list) -> bytes:
    """The index key, from ``keys/_index.age`` as the history names it."""
    return index.read_index_key(v.root, identities, keyfiles.read(v, KEY))


def _stage_key(v: Vault, key: bytes, recipients: list | None) -> None:
    keyfiles.stage(v, KEY, age.encrypt_bytes(key, recipients or members.ring_recipients(v)))


def search_dir(root: Path) -> Path:
    return root / "index" / "search"


def rel(root: Path, p: Path) -> str:
    return str(p.relative_to(root))


def index_identity(key: bytes) -> age.HybridIdentity:
    """The index identity: its 32-byte seed is HMAC-SHA-256(index key, label)."""
    return age.identity_from_seed(hmac.new(key, IDENTITY_LABEL, hashlib.sha256).digest())


def identity_text(key: bytes) -> str:
    return str(index_identity(key))


def index_recipient(key: bytes) -> age.Recipient:
    return index_identity(key).recipient()


def sealed_digest(sealed: str) -> str:
    """What the index records of a profile version: hex SHA-256 of its ``sealed`` string."""
    return hashlib.sha256(sealed.encode()).hexdigest()


def read_recipient(v: Vault) -> age.Recipient | None:
    """The index recipient, from its record signed by an active archive member; None if never built."""
    what = RECIPIENT
    if not keyfiles.exists(v, RECIPIENT):
        if keyfiles.exists(v, HEAD):
            raise IntegrityError(N_("{what}: missing"), hint=REBUILD_HINT, what=what)
        return None
    # Read as the history names it: an older record put back (its key known to a former member)
    # would have every later update encrypted to that key.
    rec = records.parse_toml(keyfiles.read(v, RECIPIENT), schema="search", what=what)
    signer = members.verify_by_member(v, rec, what=what)
    # Whoever could sign this record could have deltas encrypted to a key of their own: only an
    # active member of the archive department may (a former one could otherwise read updates).
    if signer["status"] != "active" or not v.policy.may(signer["roles"], "dossier.read") or rec["by"] != signer["name"]:
        raise IntegrityError(N_("{what}: not signed by an active member of the archive department"), hint=REBUILD_HINT, what=what)
    return age.parse_recipient(rec["recipient"])


def _write_recipient(actor: Actor, key: bytes) -> None:
    rcpt = str(index_recipient(key))
    rec = actor.sign({"format": 1, "recipient": rcpt, "at": actor.clock.stamp(), "by": actor.name})
    records.validate(rec, "search", what=RECIPIENT)
    make_dir(search_dir(actor.vault.root), parents=True)
    keyfiles.stage(actor.vault, RECIPIENT, records.dump_toml(rec))


def _seal(actor: Actor, rcpt: age.Recipient, header: dict[str, Any], body: bytes) -> bytes:
    header = actor.sign({**header, "format": 1, "body_sha256": hashlib.sha256(body).hexdigest(),
                         "by": actor.name, "at": actor.clock.stamp()})
    return age.encrypt_bytes(pack(header, body), [rcpt])


def _read(v: Vault, what: str) -> bytes:
    """The bytes of index file ``what`` as the history names it (IntegrityError names it otherwise)."""
    try:
        return keyfiles.read(v, what)
    except IntegrityError as e:  # not the file the history names: changed, put back or deleted
        raise IntegrityError(N_("{what}: damaged or tampered with (not the file the history names: {reason})"),
                             hint=REBUILD_HINT, what=what, reason=e.message) from None


def _decrypt(raw: bytes, what: str, ident: age.Identity) -> bytes:
    try:
        return age.decrypt_bytes(raw, [ident])
    except NoIdentityMatchError:
        raise IntegrityError(N_("{what}: not encrypted to the current index key"), hint=REBUILD_HINT, what=what) from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("{what}: damaged or tampered with"), hint=REBUILD_HINT, what=what) from None


def _signer(v: Vault, header: dict, what: str) -> dict[str, Any]:
    """The member who signed ``header``, verified (as ``members.verify_by_member``, with each member's
    key decoded once per process: a query may open dozens of deltas)."""
    sig = header.get("signature")
    signer = members.all_members(v).get(sig.get("by") if isinstance(sig, dict) else None)  # type: ignore[arg-type]
    if signer is None:
        raise IntegrityError(N_("{what}: signed by an unknown member"), what=what)
    records.verify_record(header, authority.signing_key(signer["key"]), what=what)
    return signer


def _open(v: Vault, path: Path, ident: age.Identity, kind: str, may: tuple[str, ...]) -> tuple[dict, bytes]:
    """Decrypt and verify one signed index file (head or delta); IntegrityError names it otherwise."""
    what = rel(v.root, path)
    try:
        header, body = unpack(_decrypt(_read(v, what), what, ident))
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


def _delta_paths(v: Vault) -> list[tuple[int, Path]]:
    """The deltas the history names (with this command's staging), in sequence order."""
    out = []
    for r in keyfiles.listing(v, DELTAS):
        stem = r[len(DELTAS):].removesuffix(".age")
        if stem.isdigit() and "/" not in stem:
            out.append((int(stem), v.root / r))
    return sorted(out)


def _loader(v: Vault, files: dict[str, list[str]], ident: age.Identity) -> Callable[[str, int], bytes | None]:
    def load(kind: str, n: int) -> bytes | None:
        ent = files.get(f"{kind}{n}")
        if ent is None:
            return None
        what = ent[0]
        if not keyfiles.exists(v, what):
            raise IntegrityError(N_("{what}: missing (the index head names it)"), hint=REBUILD_HINT, what=what)
        data = _read(v, what)
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
    head_sha = hashlib.sha256(_read(v, HEAD)).hexdigest()
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
    for seq, p in _delta_paths(v):
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


def add_profile(actor: Actor, m: Mapping[str, Any], profile: Mapping[str, Any]) -> bool:
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
    make_dir(search_dir(v.root) / "delta", parents=True)
    seq = numbering.next_delta(v)
    keyfiles.stage(v, f"{DELTAS}{seq:010d}.age", _seal(actor, rcpt, {"kind": "delta", "seq": seq}, body))
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
    which = set(idx.db.dirty) if idx.files else _all_shards(idx.db)
    files = _write_shards(actor, idx, rcpt, which)
    idx.count = (idx.count if idx.files else 0) + idx.db.grown  # without reading every dossier shard
    idx.db.grown = 0
    keyfiles.stage(v, HEAD, _head_sealed(actor, idx, rcpt, files, through))
    idx.files, idx.db.dirty = files, set()
    _sweep(v, files)
    _drop_deltas(v, through)


def _head_sealed(actor: Actor, idx: Index, rcpt: age.Recipient, files: dict, through: int) -> bytes:
    h = {"kind": "head", "through": through, "grams": idx.db.n_grams, "dossier_shards": idx.db.n_dossiers,
         "dossiers": idx.count, "bucket": idx.db.bucket_key.hex()}
    return _seal(actor, rcpt, h, json.dumps(files, sort_keys=True, separators=(",", ":")).encode())


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
    them, so an interrupted one is dropped by the recovery) — which ``check`` names; readers never
    open them. Returns them. Needs no key."""
    v = actor.vault
    out = []
    for kind in ("g", "d"):
        d = search_dir(v.root) / kind
        gone = False
        for p in sorted(d.glob("*.age")) if d.is_dir() else []:
            r = rel(v.root, p)
            if not authority.exists(v, r):
                remove(p)
                out.append(r)
                gone = True
        if gone:
            fsync_dir(d)
    return out


def _newest_delta(v: Vault) -> int:
    """The highest delta sequence number the history names (0 if none)."""
    return max((seq for seq, _ in _delta_paths(v)), default=0)


def _drop_deltas(v: Vault, through: int) -> None:
    for seq, p in _delta_paths(v):
        if seq <= through:
            keyfiles.stage(v, f"{DELTAS}{p.name}", None)


def build(actor: Actor, items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> int:
    """Build the index afresh from (manifest, profile) pairs; returns how many dossiers it holds.

    Call under the exclusive lock. Removes the blind indexes of earlier versions, whose tokens told
    anyone with the directory which dossiers share a name or contact.
    """
    v = actor.vault
    key = read_key(v, actor.read_identities())
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


def moved(v: Vault, idx: Index) -> bool:
    """True if the head changed since ``idx`` was opened (a merge ran meanwhile and swept its shards)."""
    try:
        return hashlib.sha256((v.root / HEAD).read_bytes()).hexdigest() != idx.head_sha
    except FileNotFoundError:
        return True


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
        _stage_key(v, os.urandom(32), recipients)
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
    _stage_key(v, new_key, recipients)
    _write_recipient(actor, new_key)
    _sweep(v, files)
    _drop_deltas(v, through)


def _all_shards(db: SearchDB) -> set[tuple[str, int]]:
    return {(k, n) for k, c in (("g", db.n_grams), ("d", db.n_dossiers)) for n in range(c)}
