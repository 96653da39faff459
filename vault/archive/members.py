"""Members and rings: who belongs to the vault, and the ring identities that hold its read keys.

A ring (for now one, ``archive``) is an age identity wrapped to each of its members. Key tables
are encrypted to ring recipients, so a member joining re-wraps one small file, and a member
leaving rotates the ring identity and re-wraps key tables only — never document ciphertext.
"""

from __future__ import annotations

import base64
from typing import Any, Iterable

from vault import clock
from vault.store import records
from vault.crypto import age
from vault.errors import (
    AuthenticationError,
    FormatError,
    IntegrityError,
    NoIdentityMatchError,
    PermissionDeniedError,
)
from vault.store.identity import MemberKey, PublicKey
from vault.store import write_atomic
from vault.archive import trust


def _member_record(name: str, key: PublicKey, roles: list[str], dept: str, by: str) -> dict[str, Any]:
    return {
        "format": 1,
        "name": name,
        "key": key.line(),
        "roles": roles,
        "dept": dept,
        "status": "active",
        "added_at": clock.stamp(),
        "added_by": by,
    }


def write_genesis(v, supervisor: str, key: PublicKey, ring_ids: dict[str, str]) -> None:
    """Write the founder's record and the first generation of every ring (anchored by vault.toml)."""
    rec = _member_record(supervisor, key, ["supervisor"], "archive", supervisor)
    records.write_toml(v.layout.member(supervisor), rec)
    for ring, secret in ring_ids.items():
        members = [supervisor] if "supervisor" in v.policy.ring_roles(ring) else []
        _write_ring(v, ring, 1, secret, members, {supervisor: key}, by=supervisor, signer=None)


def _write_ring(v, ring: str, generation: int, secret: str, members: list[str], keys: dict[str, PublicKey],
                *, by: str, signer) -> None:
    rec = {
        "format": 1,
        "name": ring,
        "generation": generation,
        "recipient": age.recipient_of(secret),
        "members": sorted(members),
        "updated_at": clock.stamp(),
        "updated_by": by,
    }
    if signer is not None:
        rec = signer.sign(rec)
    recipients = [age.parse_recipient(keys[m].recipient) for m in members]
    # A ring with no member yet is still wrapped to nobody: its secret is then simply unreachable
    # until a member joins, which re-creates it; we never write the secret in clear.
    blob = age.encrypt_bytes(secret.encode(), recipients) if recipients else b""
    write_atomic(v.layout.ring_secret(ring), blob, mode=0o600)
    records.write_toml(v.layout.ring_record(ring), rec)


def _load_raw(v) -> dict[str, dict[str, Any]]:
    out = {}
    mdir = v.root / "members"
    for p in sorted(mdir.glob("*.toml")):
        rec = records.load_toml(p, schema="member", what=f"members/{p.name}")
        if rec["name"] != p.stem:
            raise IntegrityError(f"members/{p.name}: record names another member")
        out[rec["name"]] = rec
    return out


def all_members(v) -> dict[str, dict[str, Any]]:
    """Every member record, verified back to the genesis record (a supervisor signs each addition).

    The verified result is cached on the vault object, keyed by the size and mtime of every member
    file, so a command that checks many signatures verifies the membership once.
    """
    mdir = v.root / "members"
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in mdir.glob("*.toml")))
    cached = getattr(v, "_members_cache", None)
    if cached is not None and cached[0] == stamp:
        return dict(cached[1])
    result = _verify_all(v)
    v._members_cache = (stamp, result)
    return dict(result)


def _verify_all(v) -> dict[str, dict[str, Any]]:
    raw = _load_raw(v)
    founder = v.config["founder"]
    f = raw.get(founder["name"])
    if f is None or f["key"] != founder["key"] or f["added_by"] != founder["name"]:
        raise IntegrityError(f"members/{founder['name']}.toml: founder record does not match vault.toml")
    trusted = {founder["name"]: f}
    pending = {n: r for n, r in raw.items() if n != founder["name"]}
    if "signature" in f:  # a founder record changed later (role or status) is signed like any other
        _verify_member(f, trusted | pending, trusted)
    # Fixpoint: a record is trusted once its signer is a trusted supervisor.
    while pending:
        progressed = False
        for name, rec in list(pending.items()):
            signer = rec.get("signature", {}).get("by")
            if signer in trusted:
                _verify_member(rec, raw, trusted)
                trusted[name] = pending.pop(name)
                progressed = True
        if not progressed:
            bad = sorted(pending)[0]
            raise IntegrityError(f"members/{bad}.toml: not signed by a known supervisor")
    return trusted


def _verify_member(rec: dict[str, Any], raw: dict, trusted: dict) -> None:
    signer = trusted.get(rec["signature"]["by"]) if "signature" in rec else None
    if signer is None or not trust.may_sign("member", signer):
        raise IntegrityError(f"members/{rec['name']}.toml: not signed by a supervisor")
    records.verify_record(rec, PublicKey.parse(signer["key"]).signing, what=f"members/{rec['name']}.toml")


def verify_by_supervisor(v, data: dict[str, Any], *, what: str, kind: str = "policy") -> dict[str, Any]:
    """Verify a record of ``kind`` signed by a (current or former) supervisor; returns the signer's record."""
    by = data.get("signature", {}).get("by")
    signer = all_members(v).get(by)
    if signer is None or not trust.may_sign(kind, signer):
        raise IntegrityError(f"{what}: not signed by a supervisor")
    records.verify_record(data, PublicKey.parse(signer["key"]).signing, what=what)
    return signer


def verify_by_member(v, data: dict[str, Any], *, what: str, members: dict | None = None) -> dict[str, Any]:
    """Verify a record signed by any member; returns the signer's record."""
    members = members if members is not None else all_members(v)
    sig = data.get("signature")
    by = sig.get("by") if isinstance(sig, dict) else None
    signer = members.get(by) if isinstance(by, str) else None
    if signer is None:
        raise IntegrityError(f"{what}: signed by unknown member {by!r}")
    records.verify_record(data, PublicKey.parse(signer["key"]).signing, what=what)
    return signer


def ring_record(v, ring: str) -> dict[str, Any]:
    """The current ring record, verified: generation 1 against vault.toml, later ones by signature."""
    path = v.layout.ring_record(ring)
    rec = records.load_toml(path, schema="ring", what=f"rings/{ring}.toml")
    if rec["generation"] == 1 and "signature" not in rec:
        if v.config["genesis_rings"].get(ring) != rec["recipient"]:
            raise IntegrityError(f"rings/{ring}.toml: recipient does not match vault.toml")
    else:
        verify_by_supervisor(v, rec, what=f"rings/{ring}.toml", kind="ring")
    return rec


def seal_text(v, text: str, names: Iterable[str] = (), mem: dict | None = None) -> str:
    """Seal free text (purposes, reasons, notes may name customers) to the archive ring and to the
    named active members; returns base64 of the age file."""
    mem = mem if mem is not None else all_members(v)
    rcpts = ring_recipients(v) + [age.parse_recipient(PublicKey.parse(mem[n]["key"]).recipient)
                                  for n in sorted(set(names)) if mem[n]["status"] == "active"]
    return base64.b64encode(age.encrypt_bytes(text.encode(), rcpts)).decode()


def open_text(actor, sealed: str, *, what: str) -> str | None:
    """The plaintext of a text sealed by ``seal_text``, or None when it was not sealed to this member
    (nor to a ring they hold). A damaged text is an IntegrityError naming ``what``."""
    try:
        blob = base64.b64decode(sealed, validate=True)
        return age.decrypt_bytes(blob, actor.read_identities()).decode()
    except NoIdentityMatchError:
        return None
    except (FormatError, AuthenticationError, UnicodeDecodeError, ValueError):
        raise IntegrityError(f"{what}: sealed text damaged or tampered with") from None


def reveal(actor, texts: dict[str, tuple[str, str]], out: dict[str, Any], *, number: str | None, ref: str) -> None:
    """Put sealed free texts into ``out`` for the member they were sealed to.

    :param texts: output key -> (sealed base64, description of where it lives) for each text that exists.
    :param out: gets each key: the plaintext where this member may open it, else None with the key
        listed in ``out["sealed_texts"]`` — others learn that a text exists, nothing more.
    Opening any text is one audit entry ``text.read`` (free text may name the customer).
    """
    opened = False
    for key, (sealed, what) in texts.items():
        text = open_text(actor, sealed, what=what) if actor is not None else None
        out[key] = text
        if text is None:
            out.setdefault("sealed_texts", []).append(key)
        else:
            opened = True
    if opened:
        actor.audit("text.read", number=number, ref=ref)


def ring_recipients(v) -> list[age.Recipient]:
    """Recipients every key table is encrypted to: the current generation of each ring."""
    return [age.parse_recipient(ring_record(v, r)["recipient"]) for r in sorted(v.policy.data["rings"])]


def unlock_ring(v, ring: str, ident: MemberKey) -> age.Identity:
    """Decrypt the ring identity with a member's identity."""
    blob = v.layout.ring_secret(ring).read_bytes()
    try:
        secret = age.decrypt_bytes(blob, [ident.age_identity()]).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(f"you are not in the {ring} ring") from None
    except (FormatError, AuthenticationError, UnicodeDecodeError):
        raise IntegrityError(f"rings/{ring}.age: damaged or tampered with") from None
    if age.recipient_of(secret) != ring_record(v, ring)["recipient"]:
        raise IntegrityError(f"rings/{ring}.age: does not match rings/{ring}.toml")
    return age.parse_identity(secret)
