"""The sealed search index under ``index/search/``: a signed base and signed deltas that only the index key opens.

Every file is an age file to the *index recipient*, a hybrid post-quantum identity derived from
the 32-byte index key in ``keys/_index.age``. Writing needs only the recipient (a signed record),
so a liaison who updates a dossier through a grant — and holds no index key — still updates the
index in the same command; reading needs the key, which only the archive ring opens. Adding a
dossier or a profile version writes one small padded delta, whatever the vault's size; deltas are
merged into the base when they pile up. Destroying a dossier rewrites the base without it, deletes
the deltas and rotates the index key, so no file written before holds the dossier's values under a
key that still exists. See docs/FORMAT.md §11.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from vault import clock
from vault.archive import members
from vault.store import make_dir, index, records
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError
from vault.i18n import N_
from vault.store.searchdb import SearchDB, pack, unpack
from vault.store import fsync_dir, remove, remove_tree, replace, write_atomic, write_new

IDENTITY_LABEL = b"vault-search-identity-v1"
#: Deltas are padded to a multiple of this many bytes, so a delta's size hides the lengths of the values.
DELTA_PAD = 1024
#: Merge the deltas into the base once this many have piled up.
MERGE_AFTER = 64
REBUILD_HINT = N_("run 'vault index rebuild' (an archive member rebuilds it from the sealed profiles)")


def search_dir(root: Path) -> Path:
    return root / "index" / "search"


def _rel(p: Path) -> str:
    return "index/search/" + ("delta/" if p.parent.name == "delta" else "") + p.name


def identity_text(key: bytes) -> str:
    """The index identity: its 32-byte seed is HMAC-SHA-256(index key, label)."""
    return str(age.identity_from_seed(hmac.new(key, IDENTITY_LABEL, hashlib.sha256).digest()))


def sealed_digest(sealed: str) -> str:
    """What the index records of a profile version: hex SHA-256 of its ``sealed`` string."""
    return hashlib.sha256(sealed.encode()).hexdigest()


def read_recipient(v) -> age.Recipient | None:
    """The index recipient, from its record signed by an active archive member; None if never built."""
    p = search_dir(v.root) / "recipient.toml"
    what = "index/search/recipient.toml"
    if not p.exists():
        if (search_dir(v.root) / "base.age").exists():
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
    rcpt = age.recipient_of(identity_text(key))
    rec = actor.sign({"format": 1, "recipient": rcpt, "at": clock.stamp(), "by": actor.name})
    records.validate(rec, "search", what="index/search/recipient.toml")
    make_dir(search_dir(actor.vault.root), parents=True)
    records.write_toml(search_dir(actor.vault.root) / "recipient.toml", rec)


def _seal(actor, rcpt: age.Recipient, header: dict[str, Any], body: bytes) -> bytes:
    header = actor.sign({**header, "format": 1, "body_sha256": hashlib.sha256(body).hexdigest(),
                         "by": actor.name, "at": clock.stamp()})
    return age.encrypt_bytes(pack(header, body), [rcpt])


def _open(v, path: Path, ident: age.Identity, kind: str, may: tuple[str, ...]) -> tuple[dict, bytes]:
    """Decrypt and verify one index file; IntegrityError names it when it cannot be trusted."""
    what = _rel(path)
    try:
        header, body = unpack(age.decrypt_bytes(path.read_bytes(), [ident]))
    except NoIdentityMatchError:
        raise IntegrityError(N_("{what}: not encrypted to the current index key"), hint=REBUILD_HINT, what=what) from None
    except (FormatError, AuthenticationError):
        raise IntegrityError(N_("{what}: damaged or tampered with"), hint=REBUILD_HINT, what=what) from None
    try:
        signer = members.verify_by_member(v, header, what=what)
    except (IntegrityError, KeyError, TypeError):
        raise IntegrityError(N_("{what}: bad signature (tampered or damaged)"), hint=REBUILD_HINT, what=what) from None
    if header.get("kind") != kind or header.get("by") != signer["name"] \
            or not any(v.policy.may(signer["roles"], a) for a in may) \
            or header.get("body_sha256") != hashlib.sha256(body).hexdigest():
        raise IntegrityError(N_("{what}: not a {kind} its signer {name} could write"), hint=REBUILD_HINT, what=what, kind=kind, name=signer['name'])
    return header, body


@dataclass
class Index:
    """An opened index: the database (base + deltas applied), and what a merge would replace."""

    db: SearchDB
    key: bytes
    through: int
    deltas: list[Path] = field(default_factory=list)


def _delta_paths(root: Path) -> list[tuple[int, Path]]:
    d = search_dir(root) / "delta"
    out = []
    for p in d.glob("*.age") if d.is_dir() else []:
        if p.stem.isdigit():
            out.append((int(p.stem), p))
    return sorted(out)


def open_index(actor, *, key: bytes | None = None) -> Index | None:
    """The index for a member holding the index key; None if it was never built.

    PermissionDeniedError for a member outside the archive department (no index key).
    """
    v = actor.vault
    key = key or index.read_index_key(v.root, actor.read_identities())
    ident = age.parse_identity(identity_text(key))
    base = search_dir(v.root) / "base.age"
    _finish_rotation(actor, key, ident)
    if not base.exists():
        return None
    rcpt = read_recipient(v)
    if rcpt is None or str(rcpt) != age.recipient_of(identity_text(key)):
        raise IntegrityError(N_("index/search/recipient.toml: does not match the index key"), hint=REBUILD_HINT)
    header, body = _open(v, base, ident, "base", ("dossier.read",))
    try:
        db = SearchDB(body)
    except FormatError:
        raise IntegrityError(N_("index/search/base.age: damaged"), hint=REBUILD_HINT) from None
    idx = Index(db, key, int(header.get("through", 0)))
    for seq, p in _delta_paths(v.root):
        if seq <= idx.through:
            continue  # merged already; left by a merge that was interrupted
        h, body = _open(v, p, ident, "delta", ("dossier.update", "dossier.create"))
        if h.get("seq") != seq:
            raise IntegrityError(N_("{rel}: holds delta {seq}"), hint=REBUILD_HINT, rel=_rel(p), seq=h.get('seq'))
        _apply(db, h, json.loads(body))
        idx.deltas.append(p)
    return idx


def _apply(db: SearchDB, header: Mapping[str, Any], delta: Mapping[str, Any]) -> None:
    for put in delta.get("put", []):
        db.put(put["dossier"], number=put["number"], version=put["version"], sealed_sha256=put["sealed_sha256"],
               by=header["by"], profile=put["profile"])


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


def save(actor, idx: Index, *, key: bytes | None = None) -> None:
    """Write the base from ``idx`` (to the recipient of ``key``, default the current one) and delete
    the deltas it holds. Call under the exclusive lock."""
    v = actor.vault
    key = key or idx.key
    rcpt = age.parse_recipient(age.recipient_of(identity_text(key)))
    through = index.peek_sequence(v.root, "search/sequence") - 1
    d = search_dir(v.root)
    make_dir(d, parents=True)
    write_atomic(d / "base.age", _seal(actor, rcpt, {"kind": "base", "through": through}, idx.db.serialize()))
    _drop_deltas(v.root, through)


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
    db = SearchDB()
    for m, profile in items:
        p = m["profile"][-1]
        db.put(m["id"], number=m["number"], version=p["version"], sealed_sha256=sealed_digest(p["sealed"]),
               by=p["by"], profile=profile)
    _write_recipient(actor, key)
    save(actor, Index(db, key, 0))
    blind = v.root / "index" / "blind"
    if blind.is_dir():
        remove_tree(blind)
        fsync_dir(blind.parent)
    return len(db)


def merge_if_due(actor, idx: Index) -> bool:
    """Fold the deltas into the base once ``MERGE_AFTER`` have piled up (takes the exclusive lock)."""
    if len(idx.deltas) < MERGE_AFTER:
        return False
    with actor.vault.lock(exclusive=True):
        fresh = open_index(actor)
        if fresh is not None:
            save(actor, fresh)
    return True


def forget(actor, dossier_id: str) -> None:
    """Remove a dossier from the index for its destruction (call under the exclusive lock).

    The base is rewritten without it, the deltas deleted and the index key rotated (``rekey``), so
    that copies of earlier index files (in backups) are encrypted to a key that no longer exists
    once its mirrored generations are shredded like a key table's.
    """
    v = actor.vault
    idx = open_index(actor)
    blind = v.root / "index" / "blind"
    if blind.is_dir():
        remove_tree(blind)
    if idx is None:
        return
    idx.db.remove(dossier_id)
    rekey(actor, idx, os.urandom(32))


def stage_rotation(actor, identities: list, recipients: list) -> bytes:
    """A new index key for a member removal: returns ``keys/_index.age`` for the removal's commit
    (the new key, encrypted to the new rings' ``recipients``) and writes the index re-sealed to it
    as ``base.next.age``, which ``open_index`` puts in place once that key is the one in force
    (and drops if the commit never happened: it does not open with the old key)."""
    v = actor.vault
    key = index.read_index_key(v.root, identities)
    new_key = os.urandom(32)
    idx = open_index(actor, key=key)
    if idx is not None:
        rcpt = age.parse_recipient(age.recipient_of(identity_text(new_key)))
        through = index.peek_sequence(v.root, "search/sequence") - 1
        write_atomic(search_dir(v.root) / "base.next.age",
                     _seal(actor, rcpt, {"kind": "base", "through": through}, idx.db.serialize()))
    return age.encrypt_bytes(new_key, recipients)


def rekey(actor, idx: Index, new_key: bytes, recipients: list | None = None) -> None:
    """Replace the index key with ``new_key`` and re-seal the index to it (call under the exclusive
    lock; also for a rotation on member removal). Order: the new base to ``base.next.age``, then the
    new key, then the recipient, then the rename — an interrupted run is finished by the next
    ``open_index`` (see ``_finish_rotation``), or undone if the key was not replaced yet."""
    v = actor.vault
    d = search_dir(v.root)
    rcpt = age.parse_recipient(age.recipient_of(identity_text(new_key)))
    through = index.peek_sequence(v.root, "search/sequence") - 1
    write_atomic(d / "base.next.age", _seal(actor, rcpt, {"kind": "base", "through": through}, idx.db.serialize()))
    index.write_index_key(v.root, new_key, recipients or members.ring_recipients(v))
    _write_recipient(actor, new_key)
    replace(d / "base.next.age", d / "base.age")
    fsync_dir(d)
    _drop_deltas(v.root, through)


def _finish_rotation(actor, key: bytes, ident: age.Identity) -> None:
    """Complete a rotation that ``forget`` began: ``base.next.age`` opens with the current key."""
    d = search_dir(actor.vault.root)
    nxt = d / "base.next.age"
    if not nxt.exists():
        return
    # No lock taken here: the caller may hold it already, and each step is atomic and idempotent.
    try:
        header, _ = _open(actor.vault, nxt, ident, "base", ("dossier.read",))
    except IntegrityError:
        remove(nxt)  # the key was not replaced yet: the old base still holds (the destruction reruns)
        return
    _write_recipient(actor, key)
    replace(nxt, d / "base.age")
    fsync_dir(d)
    _drop_deltas(actor.vault.root, int(header.get("through", 0)))
