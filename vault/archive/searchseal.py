"""The search index's keys and sealed files: the index key and identity, the signed recipient record, signed index files.

The index identity is a hybrid post-quantum age identity derived from the 32-byte index key in
``keys/_index.age``; ``index/search/recipient.toml``, signed by an active archive member, publishes
its recipient so that a writer without the key can still seal a delta to it. Heads and deltas are
signed records sealed to that recipient; opening one checks, as the history names its bytes, that it
decrypts with the current key, verifies, and was signed by a member who may write that kind. See
docs/FORMAT.md §11.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vault.archive import authority, keyfiles, members
from vault.store import index, records
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError
from vault.i18n import N_
from vault.store.searchdb import pack, unpack
from vault.store import make_dir

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault
    from vault.crypto.mlkem import HybridIdentity

IDENTITY_LABEL = b"vault-search-identity-v1"
REBUILD_HINT = N_("run 'vault index rebuild' (an archive member rebuilds it from the sealed profiles)")
KINDS = {"g": "gram", "d": "dossier"}

KEY = "keys/_index.age"
RECIPIENT = "index/search/recipient.toml"
HEAD = "index/search/head.age"
DELTAS = "index/search/delta/"
LEGACY = ("index/search/base.age",)  # the single-file index of an earlier version
# Files an earlier version's index write left beside the head (this one stages with the entry): no
# reader opens them, ``check`` notes them, ``vault repair`` removes them.
LEFTOVERS = ("head.next.age", "base.next.age")


def read_key(v: Vault, identities: list) -> bytes:
    """The index key, from ``keys/_index.age`` as the history names it."""
    return index.read_index_key(v.root, identities, keyfiles.read(v, KEY))


def stage_key(v: Vault, key: bytes, recipients: list | None) -> None:
    keyfiles.stage(v, KEY, age.encrypt_bytes(key, recipients or members.ring_recipients(v)))


def search_dir(root: Path) -> Path:
    return root / "index" / "search"


def rel(root: Path, p: Path) -> str:
    return str(p.relative_to(root))


def index_identity(key: bytes) -> HybridIdentity:
    """The index identity: its 32-byte seed is HMAC-SHA-256(index key, label)."""
    return cast("HybridIdentity", age.identity_from_seed(hmac.new(key, IDENTITY_LABEL, hashlib.sha256).digest()))


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


def write_recipient(actor: Actor, key: bytes) -> None:
    rcpt = str(index_recipient(key))
    rec = actor.sign({"format": 1, "recipient": rcpt, "at": actor.clock.stamp(), "by": actor.name})
    records.validate(rec, "search", what=RECIPIENT)
    make_dir(search_dir(actor.vault.root), parents=True)
    keyfiles.stage(actor.vault, RECIPIENT, records.dump_toml(rec))


def seal(actor: Actor, rcpt: age.Recipient, header: dict[str, Any], body: bytes) -> bytes:
    header = actor.sign({**header, "format": 1, "body_sha256": hashlib.sha256(body).hexdigest(),
                         "by": actor.name, "at": actor.clock.stamp()})
    return age.encrypt_bytes(pack(header, body), [rcpt])


def read_file(v: Vault, what: str) -> bytes:
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


def open_signed(v: Vault, path: Path, ident: age.Identity, kind: str, may: tuple[str, ...]) -> tuple[dict, bytes]:
    """Decrypt and verify one signed index file (head or delta); IntegrityError names it otherwise."""
    what = rel(v.root, path)
    try:
        header, body = unpack(_decrypt(read_file(v, what), what, ident))
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
