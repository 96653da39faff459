"""Members and rings: who belongs to the vault, and the ring identities that hold its read keys.

A ring (for now one, ``archive``) is an age identity wrapped to each of its members. Key tables
are encrypted to ring recipients, so a member joining re-wraps one small file, and a member
leaving rotates the ring identity and re-wraps key tables only — never document ciphertext.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Iterable

from vault.archive import authority, committed
from vault.crypto import age
from vault.errors import (
    AuthenticationError,
    FormatError,
    IntegrityError,
    NoIdentityMatchError,
    PermissionDeniedError,
)
from vault.store import names, records
from vault.store.identity import MemberKey, PublicKey, signing_key
from vault.store import write_atomic
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.policy import Policy
    from vault.archive.handle import Actor, Vault


def _member_record(name: str, key: PublicKey, roles: list[str], dept: str, by: str,
                   display_name: str | None = None, *, at: str) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "format": 1,
        "name": name,
        "key": key.line(),
        "roles": roles,
        "dept": dept,
        "status": "active",
        "added_at": at,
        "added_by": by,
    }
    if display_name is not None:  # optional: a member without one is shown by their name
        rec["display_name"] = display_name
    return rec


def write_genesis(v: Vault, supervisor: str, key: PublicKey, ring_ids: dict[str, str], policy: Policy,
                  display_name: str | None = None) -> None:
    """Write the founder's record and the first generation of every ring (anchored by vault.toml)."""
    rec = _member_record(supervisor, key, ["supervisor"], "archive", supervisor, display_name, at=v.clock.stamp())
    records.write_toml(v.layout.member(supervisor), rec)
    for ring, secret in ring_ids.items():
        members = [supervisor] if "supervisor" in policy.ring_roles(ring) else []
        for rel, data in _ring_files(v, ring, 1, secret, members, {supervisor: key}, by=supervisor,
                                     signer=None).items():
            write_atomic(v.root / rel, data, mode=0o600 if rel.endswith(".age") else 0o644)


def _ring_files(v: Vault, ring: str, generation: int, secret: str, members: list[str], keys: dict[str, PublicKey],
                *, by: str, signer: Actor | None) -> dict[str, bytes]:
    rec = {
        "format": 1,
        "name": ring,
        "generation": generation,
        "recipient": age.recipient_of(secret),
        "members": sorted(members),
        "updated_at": v.clock.stamp(),
        "updated_by": by,
    }
    if signer is not None:
        rec = signer.sign(rec)
    recipients = [age.parse_recipient(keys[m].recipient) for m in members]
    # A ring with no member yet is still wrapped to nobody: its secret is then simply unreachable
    # until a member joins, which re-creates it; we never write the secret in clear.
    blob = age.encrypt_bytes(secret.encode(), recipients) if recipients else b""
    return {f"rings/{ring}.age": blob, f"rings/{ring}.toml": records.dump_toml(rec)}


def member_names(v: Vault) -> dict[str, str | None]:
    """Every member's name -> display name (or None), former members included (names are never reused)."""
    return {n: r.get("display_name") for n, r in all_members(v).items()}


def resolve_member(v: Vault, text: str) -> str:
    """The member ``text`` names, by name or display name (``张三`` = ``zhangsan``); an ambiguous text is
    an error listing the candidates."""
    return names.resolve("member", text, member_names(v), listing="'vault member list'")


def shown(v: Vault, name: str, mem: dict | None = None) -> str:
    """How a member is printed: ``张三 (zhangsan)``, or the name alone."""
    rec = (mem if mem is not None else all_members(v)).get(name)
    return names.shown(name, rec.get("display_name") if rec else None)


def all_members(v: Vault) -> dict[str, dict[str, Any]]:
    """Every member the history knows — added and removed by active supervisors, checked from the
    genesis record forward — with ``name``, ``key``, ``roles``, ``dept`` and ``status``."""
    return authority.members(v)


def verify_by_member(v: Vault, data: dict[str, Any], *, what: str, members: dict | None = None) -> dict[str, Any]:
    """Verify a record's signature by the member it names; returns the signer's record.

    A signature says who wrote a record, not that it counts: that is the history's (``authority``).
    """
    members = members if members is not None else all_members(v)
    sig = data.get("signature")
    by = sig.get("by") if isinstance(sig, dict) else None
    signer = members.get(by) if isinstance(by, str) else None
    if signer is None:
        raise IntegrityError(N_("{what}: signed by unknown member {by!r}"), what=what, by=by)
    records.verify_record(data, signing_key(signer["key"]), what=what)
    return signer


def ring_record(v: Vault, ring: str) -> dict[str, Any]:
    """The current ring record: the version the history last wrote (only member changes write it)."""
    return committed.load(v, f"rings/{ring}.toml", schema="ring")


def seal_text(v: Vault, text: str, names: Iterable[str] = (), mem: dict | None = None) -> str:
    """Seal free text (purposes, reasons, notes may name customers) to the archive ring and to the
    named active members; returns base64 of the age file."""
    mem = mem if mem is not None else all_members(v)
    rcpts = ring_recipients(v) + [age.parse_recipient(PublicKey.parse(mem[n]["key"]).recipient)
                                  for n in sorted(set(names)) if mem[n]["status"] == "active"]
    return base64.b64encode(age.encrypt_bytes(text.encode(), rcpts)).decode()


def open_text(actor: Actor, sealed: str, *, what: str) -> str | None:
    """The plaintext of a text sealed by ``seal_text``, or None when it was not sealed to this member
    (nor to a ring they hold). A damaged text is an IntegrityError naming ``what``."""
    try:
        blob = base64.b64decode(sealed, validate=True)
        return age.decrypt_bytes(blob, actor.read_identities()).decode()
    except NoIdentityMatchError:
        return None
    except (FormatError, AuthenticationError, UnicodeDecodeError, ValueError):
        raise IntegrityError(N_("{what}: sealed text damaged or tampered with"), what=what) from None


def reveal(actor: Actor | None, texts: dict[str, tuple[str, str]], out: dict[str, Any], *, number: str | None, ref: str) -> None:
    """Put sealed free texts into ``out`` for the member they were sealed to.

    :param texts: output key -> (sealed base64, description of where it lives) for each text that exists.
    :param out: gets each key: the plaintext where this member may open it, else None with the key
        listed in ``out["sealed_texts"]`` — others learn that a text exists, nothing more.
    Opening any text is one audit entry ``text.read`` (free text may name the customer); without an
    ``actor`` every text stays sealed.
    """
    opened = False
    for key, (sealed, what) in texts.items():
        text = open_text(actor, sealed, what=what) if actor is not None else None
        out[key] = text
        if text is None:
            out.setdefault("sealed_texts", []).append(key)
        else:
            opened = True
    if opened and actor is not None:
        actor.audit("text.read", number=number, ref=ref)


def ring_recipients(v: Vault) -> list[age.Recipient]:
    """Recipients every key table is encrypted to: the current generation of each ring."""
    return [age.parse_recipient(ring_record(v, r)["recipient"]) for r in sorted(v.policy.data["rings"])]


def unlock_ring(v: Vault, ring: str, ident: MemberKey) -> age.Identity:
    """Decrypt the ring identity with a member's identity."""
    blob = committed.read(v, f"rings/{ring}.age")
    try:
        secret = age.decrypt_bytes(blob, [ident.age_identity()]).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(N_("you are not in the {ring} ring"), ring=ring) from None
    except (FormatError, AuthenticationError, UnicodeDecodeError):
        raise IntegrityError(N_("rings/{ring}.age: damaged or tampered with"), ring=ring) from None
    identity = age.parse_identity(secret)  # parsed once: an ML-KEM key expansion each time
    if str(identity.recipient()) != ring_record(v, ring)["recipient"]:  # type: ignore[attr-defined]
        raise IntegrityError(N_("rings/{ring}.age: does not match rings/{ring}.toml"), ring=ring)
    return identity

