"""Membership: adding and removing members, and re-keying the rings and key tables a leaver could open [R-2.1]."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from vault.archive import authority, committed, intakekey, keyfiles, searchwrite
from vault.archive.members import _member_record, _ring_files, all_members, ring_record
from vault.archive.policy import ROLES
from vault.crypto import age
from vault.errors import (
    AuthenticationError,
    ConflictError,
    FormatError,
    InputError,
    IntegrityError,
    NoIdentityMatchError,
    NotFoundError,
    PermissionDeniedError,
)
from vault.store import records
from vault.store.identity import PublicKey
from vault.store import names
from vault.store.layout import check_name
from vault.archive.labels import resolve_name
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


def add_member(actor: Actor, name: str, key: PublicKey, roles: Iterable[str], dept: str,
               display_name: str | None = None) -> dict[str, Any]:
    """Add a member (supervisor only); members of a ring's roles get the ring identity wrapped to them.

    ``name`` is the member's id (``zhangsan``), or — when it is not of the id form and no
    ``display_name`` is given — their display name (``张三``), for which an id is made. A name or
    display name that looks like another member's (former members included) is refused.
    """
    actor.require("member.manage")
    v = actor.vault
    if not names.is_id(name):
        if display_name is not None:
            check_name("member", name)
        display_name = name
    if display_name is not None:
        display_name = names.display_name(display_name, kind="member")
    dept = resolve_name(v, "department", dept)
    roles = sorted(set(roles))
    for r in roles:
        if r not in ROLES:
            raise InputError(N_("unknown role {r!r}"), hint=N_("roles: {ROLES}"), r=r, ROLES=', '.join(ROLES))
    if not roles:
        raise InputError(N_("a member needs at least one role"), param="role")
    with v.lock(exclusive=True):
        current = all_members(v)
        if not names.is_id(name):
            name = names.new_id("member", display_name or name, current)
        check_name("member", name)
        if name in current:
            raise ConflictError(N_("member {name} already exists"), hint=N_("member names are never reused"), name=name)
        if any(r["key"] == key.line() for r in current.values()):
            raise ConflictError(N_("that public key already belongs to a member"))
        taken = {i: [i, *([r["display_name"]] if r.get("display_name") else [])] for i, r in current.items()}
        for n in (name, display_name) if display_name else (name,):
            others = names.clash(n, taken)
            if others:
                raise ConflictError(N_("the name {name!r} looks like that of member {others}"),
                                    hint=N_("choose a name that reads differently (add a distinguishing word); "
                                            "names are never reused"), name=n, others=", ".join(others))
        rec = actor.sign(_member_record(name, key, roles, dept, actor.name, display_name, at=actor.clock.stamp()))
        files: dict[str, bytes | None] = {f"members/{name}.toml": records.dump_toml(rec)}
        for ring in v.policy.rings_for(roles):
            rr = ring_record(v, ring)
            secret = _ring_secret_text(actor, ring)
            keys = {m: PublicKey.parse(current[m]["key"]) for m in rr["members"]}
            keys[name] = key
            files.update(_ring_files(v, ring, rr["generation"], secret, [*rr["members"], name], keys,
                                     by=actor.name, signer=actor))
        subject: dict[str, Any] = {"key": key.line(), "roles": roles, "dept": dept}
        if display_name is not None:
            subject["display_name"] = display_name
        actor.commit("member.add", files, ref=name, obj=name, subject=subject)
    return rec


def rename_member(actor: Actor, name: str, display_name: str) -> dict[str, Any]:
    """Give an active member a new display name (a supervisor; the id never changes). The old name
    stays in the history; the new one may look like no other member's name or id."""
    actor.require("member.manage")
    v = actor.vault
    display_name = names.display_name(display_name, kind="member")
    with v.lock(exclusive=True):
        current = all_members(v)
        if name not in current or current[name]["status"] != "active":
            raise NotFoundError(N_("no active member {name}"), hint=N_("see 'vault member list'"), name=name)
        others = names.clash(display_name, {i: [i, *([r["display_name"]] if r.get("display_name") else [])]
                                            for i, r in current.items() if i != name})
        if others:
            raise ConflictError(N_("the name {name!r} looks like that of member {others}"),
                                hint=N_("choose a name that reads differently (add a distinguishing word)"),
                                name=display_name, others=", ".join(others))
        rec = committed.load(v, f"members/{name}.toml")
        rec.pop("signature", None)
        rec["display_name"] = display_name
        signed = actor.sign(rec)
        actor.commit("member.rename", {f"members/{name}.toml": records.dump_toml(signed)}, ref=name, obj=name,
                     subject={"display_name": display_name})
    return signed


def _ring_secret_text(actor: Actor, ring: str) -> str:
    ident = actor.read_identities()  # unlocks the actor's rings
    blob = committed.read(actor.vault, f"rings/{ring}.age")
    try:
        return age.decrypt_bytes(blob, ident).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(N_("you are not in the {ring} ring, so you cannot add members to it"), ring=ring) from None


def remove_member(actor: Actor, name: str) -> list[str]:
    """Remove a member, completely, in one history entry.

    Every ring they were in rotates (a new identity wrapped to the remaining members) and every key
    table is re-encrypted to the new rings only; their grants close (a fact of the entry) and their
    key releases are deleted. Returns the key-table files re-wrapped. Document ciphertext is never
    touched. All files are staged first and committed by one entry, so an interrupted removal leaves
    the vault as it was, or is finished by the next command.
    """
    actor.require("member.manage")
    v = actor.vault
    with v.lock(exclusive=True):
        current = all_members(v)
        rec = current.get(name)
        if rec is None or rec["status"] != "active":
            raise NotFoundError(N_("no active member {name}"), name=name)
        if name == actor.name:
            raise ConflictError(N_("you cannot remove yourself"), hint=N_("ask another supervisor"))
        old_ids = actor.read_identities()
        files: dict[str, bytes | None] = {}
        new_r, new_ids = {}, []
        for ring in sorted(v.policy.data["rings"]):
            rr = ring_record(v, ring)
            if name in rr["members"]:
                secret = age.generate_identity("mlkem768x25519")
                remaining = [m for m in rr["members"] if m != name]
                keys = {m: PublicKey.parse(current[m]["key"]) for m in remaining}
                files.update(_ring_files(v, ring, rr["generation"] + 1, secret, remaining, keys, by=actor.name,
                                         signer=actor))
                new_r[ring] = age.parse_recipient(age.recipient_of(secret))
                new_ids.append(age.parse_identity(secret))
            else:
                new_r[ring] = age.parse_recipient(rr["recipient"])
        new_rcpts = [new_r[r] for r in sorted(new_r)]
        rewrapped: list[str] = []
        subject = None
        intake_ids: list = []
        if new_ids:
            # Every key table, the intake key and a new index key (with the index re-sealed to it),
            # encrypted to the new rings only, are staged with the rings and committed by the one
            # entry, which names each by hash: before it the old files stand, after it the new ones
            # (``recovery.recover`` renames what an interruption left staged). No file written from
            # here on opens with the leaver's key or an old ring.
            staged = rewrapped_key_tables(v, old_ids, new_rcpts)
            searchwrite.stage_rotation(actor, old_ids, new_rcpts)  # staged, committed by the same entry
            if keyfiles.exists(v, intakekey.KEY):
                # Every ring member could open the intake identity: a new one, staged in place of the
                # re-wrapped old file, pending submissions re-wrapped to it and to the current key,
                # its recipient named by the entry (the old one may have been copied).
                rcpt, intake_ids, staged["keys/_intake.age"] = intakekey.rotate(v, old_ids, new_rcpts)
                subject = {"intake_recipient": rcpt}
            files.update(staged)
            rewrapped = sorted([*staged, "keys/_index.age"])
        file_rec = committed.load(v, f"members/{name}.toml")
        file_rec.update(status="removed", removed_at=actor.clock.stamp(), removed_by=actor.name)
        files[f"members/{name}.toml"] = records.dump_toml(actor.sign(file_rec))
        for rel in _releases_of(v, name):  # the grants close with the entry; their key releases go with it
            files[rel] = None
        actor.commit("member.remove", files, ref=name, obj=name, subject=subject)
        actor.forget_rings()  # the generations it unlocked are gone
        if subject is not None:
            intakekey.finish(v, intake_ids, subject["intake_recipient"])
    return rewrapped


def _releases_of(v: Vault, name: str) -> list[str]:
    st = authority.state(v)
    out = []
    for gno, g in st["grants"].items():
        rel = f"keys/grants/{g['dossier']}.{gno}.age"
        if g["grantee"] == name and keyfiles.exists(v, rel):
            out.append(rel)
    return out


def rewrapped_key_tables(v: Vault, identities: list, recipients: list) -> dict[str, bytes]:
    """Every key table and the intake key the history names (``keys/*.age`` but the index key)
    re-encrypted to ``recipients`` with a fresh file key: vault path -> new bytes, for a commit to
    stage, which names each by hash."""
    out = {}
    for rel in keyfiles.listing(v, "keys/"):
        if "/" in rel[len("keys/"):] or rel == "keys/_index.age":
            continue  # key releases are the grantees', not the rings'; the index key is rotated
        try:
            plain = age.decrypt_bytes(keyfiles.read(v, rel), identities)
        except NoIdentityMatchError:
            raise PermissionDeniedError(N_("{rel}: you hold no key for it; re-wrap refused"), rel=rel) from None
        except (FormatError, AuthenticationError):
            raise IntegrityError(N_("{rel}: damaged or tampered with"), rel=rel) from None
        out[rel] = age.encrypt_bytes(plain, recipients)
    return out
