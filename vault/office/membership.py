"""Membership: adding and removing members, and re-keying the rings and key tables a leaver could open [R-2.1]."""

from __future__ import annotations

from typing import Any, Iterable
from vault import clock
from vault.store import records
from vault.crypto import age
from vault.errors import (
    AuthenticationError,
    ConflictError,
    FormatError,
    IntegrityError,
    InputError,
    NoIdentityMatchError,
    NotFoundError,
    PermissionDeniedError,
)
from vault.store.identity import PublicKey
from vault.archive.policy import ROLES
from vault.store import sync_files, write_atomic
from vault.store.layout import check_name
from vault.archive import searchindex
from vault.archive.members import _member_record, _write_ring, all_members, ring_record, ring_recipients


def add_member(actor, name: str, key: PublicKey, roles: Iterable[str], dept: str) -> dict[str, Any]:
    """Add a member (supervisor only); members of a ring's roles get the ring identity wrapped to them."""
    actor.require("member.manage")
    v = actor.vault
    check_name("member", name)
    check_name("department", dept)
    roles = sorted(set(roles))
    for r in roles:
        if r not in ROLES:
            raise InputError(f"unknown role {r!r}", hint=f"roles: {', '.join(ROLES)}")
    if not roles:
        raise InputError("a member needs at least one role", param="role")
    with v.lock(exclusive=True):
        current = all_members(v)
        if name in current:
            raise ConflictError(f"member {name} already exists", hint="member names are never reused")
        if any(r["key"] == key.line() for r in current.values()):
            raise ConflictError("that public key already belongs to a member")
        rec = actor.sign(_member_record(name, key, roles, dept, actor.name))
        records.write_toml(v.layout.member(name), rec)
        v._members_cache = None
        current[name] = rec
        actor.audit("member.add", ref=name)
        for ring in v.policy.rings_for(roles):
            rr = ring_record(v, ring)
            secret = _ring_secret_text(actor, ring)
            keys = {m: PublicKey.parse(current[m]["key"]) for m in [*rr["members"], name]}
            _write_ring(v, ring, rr["generation"], secret, [*rr["members"], name], keys, by=actor.name, signer=actor)
    return rec


def _ring_secret_text(actor, ring: str) -> str:
    ident = actor.read_identities()  # unlocks the actor's rings
    blob = actor.vault.layout.ring_secret(ring).read_bytes()
    try:
        return age.decrypt_bytes(blob, ident).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(f"you are not in the {ring} ring, so you cannot add members to it") from None


def remove_member(actor, name: str) -> list[str]:
    """Remove a member: rotate every ring they were in and re-wrap the key tables to the new ring.

    Returns the key-table files re-wrapped. Document ciphertext is never touched. The order keeps
    every key table readable at every instant: tables are first wrapped to the old and the new ring
    recipients, then the ring itself rotates, then the old recipient is dropped; the member record
    turns "removed" last, so an interrupted removal is simply run again.
    """
    actor.require("member.manage")
    v = actor.vault
    with v.lock(exclusive=True):
        current = all_members(v)
        rec = current.get(name)
        if rec is None or rec["status"] != "active":
            raise NotFoundError(f"no active member {name}")
        if name == actor.name:
            raise ConflictError("you cannot remove yourself", hint="ask another supervisor")
        old_ids = actor.read_identities()
        new = {}
        for ring in sorted(v.policy.data["rings"]):
            rr = ring_record(v, ring)
            if name in rr["members"]:
                new[ring] = (rr, age.generate_identity("mlkem768x25519"))
        rewrapped: list[str] = []
        if new:
            old_r = ring_recipients(v)
            new_r = [age.parse_recipient(age.recipient_of(s)) for _, s in new.values()]
            rewrap_key_tables(v, old_ids, [*old_r, *new_r])
            for ring, (rr, secret) in new.items():
                remaining = [m for m in rr["members"] if m != name]
                keys = {m: PublicKey.parse(current[m]["key"]) for m in remaining}
                _write_ring(v, ring, rr["generation"] + 1, secret, remaining, keys, by=actor.name, signer=actor)
            new_ids = [age.parse_identity(s) for _, s in new.values()]
            rewrapped = rewrap_key_tables(v, [*new_ids, *old_ids], ring_recipients(v))


            # A leaver who kept the index key would open every index file written after: rotate it.
            searchindex.rotate(actor, [*new_ids, *old_ids])
        rec = dict(rec, status="removed", removed_at=clock.stamp(), removed_by=actor.name)
        records.write_toml(v.layout.member(name), actor.sign(rec))
        v._members_cache = None
        actor.audit("member.remove", ref=name)
    actor.forget_rings()  # the generations it unlocked are gone
    return rewrapped


def rewrap_key_tables(v, identities: list, recipients: list) -> list[str]:
    """Re-encrypt every key table (``keys/*.age``) to ``recipients`` with a fresh file key.

    Only the small key tables change; one batched fsync pass makes the whole set durable.
    """
    paths = sorted((v.root / "keys").glob("*.age"))
    for p in paths:
        try:
            plain = age.decrypt_bytes(p.read_bytes(), identities)
        except NoIdentityMatchError:
            raise PermissionDeniedError(f"keys/{p.name}: you hold no key for it; re-wrap refused") from None
        except (FormatError, AuthenticationError):
            raise IntegrityError(f"keys/{p.name}: damaged or tampered with") from None
        write_atomic(p, age.encrypt_bytes(plain, recipients), mode=0o600, sync=False)
    sync_files(paths)
    return [f"keys/{p.name}" for p in paths]
