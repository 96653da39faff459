"""``vault migrate``: upgrade a format-1 vault to format 2, in place, crash-safe and re-runnable.

The format-1 vault is verified under the format-1 rules first (member records back to the founder,
every record's signature and signer, the audit chain and its checkpoint). Then the state those
files describe is written as the first entry of a new history — ``vault.migrate``, signed by the
migrating supervisor, naming the hash of every record it adopts — the old log is kept as evidence
(``audit/v1-log.jsonl``) and ``vault.toml`` becomes format 2 with ``migrated_from`` (the old
fingerprint) and ``migrated_by``. The new fingerprint replaces the old one kept offline.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json

from pathlib import Path
from typing import Any

from vault.clock import Clock
from vault.archive import trust
from vault.archive.authority import entry_bytes, genesis_hash
from vault.archive.witness import MIGRATED_STATE
from vault.archive.vault import fingerprint_of
from vault.crypto import sign
from vault.errors import AuthenticationError, IntegrityError, InputError, PermissionDeniedError
from vault.store import confined, fsync_dir, jsontext, make_dir, records, replace, write_atomic
from vault.store.locking import VaultLock
from vault.i18n import N_
from vault.store.identity import MemberKey, PublicKey
from vault.store import tomlread

V1_AUDIT_DOMAIN = b"vault-audit-v1\n"
V2_LOG = "audit/v2-log.jsonl"  # the new history, complete, before vault.toml switches to it


def _toml(root: Path, rel: str) -> dict[str, Any]:
    try:
        return tomlread.loads((root / rel).read_text(encoding="utf-8"))
    except (OSError, tomlread.TOMLDecodeError, UnicodeDecodeError):
        raise IntegrityError(N_("{rel}: missing or damaged"), hint=N_("restore it before migrating"), rel=rel) from None


def _v1_members(root: Path, cfg: dict) -> dict[str, dict]:
    """Member records of format 1, trusted from the founder by supervisor signatures."""
    raw = {p.stem: _toml(root, f"members/{p.name}") for p in sorted((root / "members").glob("*.toml"))}
    founder = raw.get(cfg["founder"]["name"])
    if founder is None or founder["key"] != cfg["founder"]["key"]:
        raise IntegrityError(N_("members: the founder's record does not match vault.toml"))
    trusted = {founder["name"]: founder}
    pending = {n: r for n, r in raw.items() if n != founder["name"]}
    while pending:
        progressed = False
        for name, rec in list(pending.items()):
            signer = trusted.get(rec.get("signature", {}).get("by"))
            if signer is not None and "supervisor" in signer["roles"]:
                records.verify_record(rec, PublicKey.parse(signer["key"]).signing, what=f"members/{name}.toml")
                trusted[name] = pending.pop(name)
                progressed = True
        if not progressed:
            raise IntegrityError(N_("members/{pending}.toml: not signed by a known supervisor"), pending=sorted(pending)[0])
    return trusted


def _signed(root: Path, rel: str, mem: dict, *, roles: tuple[str, ...] = ()) -> tuple[dict, str]:
    rec = _toml(root, rel)
    by = rec.get("signature", {}).get("by")
    if by not in mem:
        raise IntegrityError(N_("{rel}: signed by unknown member {by!r}"), rel=rel, by=by)
    records.verify_record(rec, PublicKey.parse(mem[by]["key"]).signing, what=rel)
    if roles and not set(roles) & set(mem[by]["roles"]):
        raise IntegrityError(N_("{rel}: signed by {by}, who may not"), rel=rel, by=by)
    return rec, by


def _v1_audit(root: Path, mem: dict) -> None:
    prev, seq = "0" * 64, 0
    path = root / "audit" / "log.jsonl"
    for raw in path.read_bytes().splitlines() if path.exists() else []:
        try:
            e = jsontext.loads(raw)
            body = {k: v for k, v in e.items() if k != "sig"}
        except (ValueError, AttributeError):
            raise IntegrityError(N_("audit/log.jsonl line {seq}: the format-1 chain is broken"), seq=seq + 1) from None
        msg = V1_AUDIT_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if e.get("seq") != seq + 1 or e.get("prev") != prev or e.get("member") not in mem:
            raise IntegrityError(N_("audit/log.jsonl line {seq}: the format-1 chain is broken"), seq=seq + 1)
        try:
            sign.verify(PublicKey.parse(mem[e["member"]]["key"]).signing, msg, base64.b64decode(e["sig"]))
        except (AuthenticationError, ValueError):
            raise IntegrityError(N_("audit/log.jsonl line {seq}: bad signature"), seq=seq + 1) from None
        prev, seq = hashlib.sha256(raw).hexdigest(), e["seq"]
    if seq:
        cp = _toml(root, "audit/checkpoint.toml")
        if (cp.get("count"), cp.get("head")) != (seq, prev):
            raise IntegrityError(N_("audit/log.jsonl: does not end where its checkpoint says (tail cut off)"))


def snapshot(root: Path, cfg: dict) -> dict[str, Any]:
    """The state a format-1 vault's files describe, verified under the format-1 rules."""
    mem = _v1_members(root, cfg)
    _v1_audit(root, mem)
    pol = _toml(root, "policy.toml")
    if hashlib.sha256(records.canonical(pol)).hexdigest() != cfg["policy_sha256"]:
        _signed(root, "policy.toml", mem, roles=("supervisor",))
    st: dict[str, Any] = {
        "v": MIGRATED_STATE, "count": 0, "head": "", "files": {}, "problems": [],
        "members": {n: {"key": r["key"], "roles": sorted(r["roles"]), "dept": r["dept"], "status": r["status"],
                        "since": 0, "removed": 0 if r["status"] == "removed" else None} for n, r in mem.items()},
        "policy": {k: v for k, v in pol.items() if k != "signature"}, "policy_version": 1,
        "dossiers": {}, "numbers": {}, "requests": {}, "grants": {}, "holds": {}, "destructions": {}, "intake": {},
        "loans": {},
    }
    for p in sorted((root / "dossiers").glob("*/manifest.toml")):
        m, _ = _signed(root, p.relative_to(root).as_posix(), mem)
        st["dossiers"][m["id"]] = {"number": m["number"], "destroyed": m["status"] == "destroyed", "dept": m["dept"]}
        st["numbers"][m["number"]] = m["id"]
    for p in sorted((root / "requests").glob("R-*.toml")):
        if "." in p.stem:
            continue
        req, by = _signed(root, f"requests/{p.name}", mem)
        if by != req["requester"]:
            raise IntegrityError(N_("requests/{name}: not signed by its requester"), name=p.name)
        f = {"kind": req["kind"], "dossier": req["dossier"], "target": req["target"], "by": by,
             "dept": mem[by]["dept"], "seq": 0, "decision": None, "decided_by": None, "used": False, "grant": None}
        if (root / "requests" / f"{p.stem}.decision.toml").exists():
            dec, dby = _signed(root, f"requests/{p.stem}.decision.toml", mem)
            ok = dby != by and (("dept-head" in mem[dby]["roles"] and mem[dby]["dept"] == f["dept"])
                                if f["kind"] == "access" else "supervisor" in mem[dby]["roles"])
            if not ok:
                raise IntegrityError(N_("requests/{stem}.decision.toml: signed by {dby}, who may not decide it"), stem=p.stem, dby=dby)
            f.update(decision=dec["decision"], decided_by=dby)
        if (root / "requests" / f"{p.stem}.used.toml").exists():
            f["used"] = _signed(root, f"requests/{p.stem}.used.toml", mem)[1] == by
        st["requests"][p.stem] = f
    for p in sorted((root / "grants").glob("G-*.toml")):
        if "." in p.stem:
            continue
        g, gby = _signed(root, f"grants/{p.name}", mem, roles=("archivist", "supervisor"))
        closed = None
        if (root / "grants" / f"{p.stem}.closed.toml").exists():
            closed = _signed(root, f"grants/{p.stem}.closed.toml", mem)[0]["reason"]
        st["grants"][p.stem] = {"request": g["request"], "dossier": g["dossier"], "grantee": g["grantee"], "by": gby,
                                "seq": 0, "closed": closed}
        if g["request"] in st["requests"]:
            st["requests"][g["request"]]["grant"] = p.stem
    for p in sorted((root / "holds").glob("*.toml")):
        h, _ = _signed(root, f"holds/{p.name}", mem)
        if h["dossier"] == p.stem:
            st["holds"][p.stem] = 0
    for p in sorted((root / "destructions").glob("D-*.toml")):
        if "." in p.stem:
            continue
        d, dby = _signed(root, f"destructions/{p.name}", mem)
        f = {"dossier": d["dossier"], "target": d["target"], "by": dby, "state": "requested", "approved_by": None,
             "seq": 0}
        if (root / "destructions" / f"{p.stem}.approval.toml").exists():
            aby = _signed(root, f"destructions/{p.stem}.approval.toml", mem, roles=("supervisor",))[1]
            if aby != dby:
                f.update(state="approved", approved_by=aby)
        if (root / "destructions" / f"{p.stem}.certificate.toml").exists():
            eby = _signed(root, f"destructions/{p.stem}.certificate.toml", mem, roles=("supervisor",))[1]
            f.update(state="executed", executed_by=eby, certificate=1)
        st["destructions"][p.stem] = f
    for p in sorted((root / "intake").glob("*.rejected.toml")):
        st["intake"][p.name.split(".")[0]] = "rejected"
    for p in sorted((root / "paper" / "loans").glob("L-*.toml")):
        if "." in p.stem:
            continue
        loan, _ = _signed(root, f"paper/loans/{p.name}", mem, roles=("archivist", "supervisor"))
        if loan.get("number") == p.stem and loan.get("dossier") in st["dossiers"]:
            st["loans"][p.stem] = {"dossier": loan["dossier"],
                                   "returned": (p.parent / f"{p.stem}.returned.toml").exists()}
    return st


def migrated_policy(pol: dict[str, Any]) -> dict[str, Any]:
    """A version-1 policy with what format 2 asks of every policy: the supervisor role may
    ``policy.manage``. Version 1 let a supervisor replace the policy by their role alone and never
    named the right; format 2 counts a policy update only from a role that may, and only if the
    supervisor role keeps it — without it a migrated policy could never change again. Nothing else
    is added: rights the current default policy gives that version 1 did not have (``dossier.update``,
    ``intake.invite``) are the office's to grant, with ``vault policy update``."""
    sup = pol.get("roles", {}).get("supervisor")
    if not isinstance(sup, dict) or "policy.manage" in sup.get("may", []):
        return pol
    out = copy.deepcopy(pol)
    out["roles"]["supervisor"]["may"] = [*sup.get("may", []), "policy.manage"]
    return out


def migrate(root: Path, ident: MemberKey, *, clock: Clock | None = None) -> str:
    """Upgrade the vault at ``root`` at ``clock``'s time (default: the machine's); returns the new
    fingerprint. Safe to run again after a crash."""
    root = Path(root)
    # Confined: the migration's temporaries go to the work directory, which the next writer empties.
    with VaultLock(root, exclusive=True), confined(root):
        cfg = _toml(root, "vault.toml")
        if cfg.get("format") == 2:
            if (root / V2_LOG).exists():  # interrupted after the switch: finish it
                replace(root / V2_LOG, root / "audit" / "log.jsonl")
                fsync_dir(root / "audit")
                return fingerprint_of(cfg)
            raise InputError(N_("this vault already has format 2"), hint=N_("nothing to migrate"))
        if cfg.get("format") != 1:
            raise InputError(N_("vault.toml: unknown format {format!r}"), format=cfg.get('format'))
        st = snapshot(root, cfg)
        me = next((n for n, m in st["members"].items() if m["key"] == ident.public.line()), None)
        if me is None or st["members"][me]["status"] != "active" or "supervisor" not in st["members"][me]["roles"]:
            raise PermissionDeniedError(N_("only an active supervisor migrates the vault"))
        # policy/1.toml: every policy version is kept, immutable; the current one becomes version 1,
        # with what format 2 asks of a policy (``migrated_policy``), signed by this supervisor.
        pol = migrated_policy(st["policy"])
        raw = (root / "policy.toml").read_bytes()
        if pol != st["policy"]:
            st["policy"] = pol
            raw = records.dump_toml(records.sign_record(pol, signer=me, key=ident))
            write_atomic(root / "policy.toml", raw, mode=0o644)  # (a re-run reads it as a supervisor's)
        make_dir(root / "policy")
        write_atomic(root / "policy" / "1.toml", raw, mode=0o644)
        if not (root / "audit" / "v1-log.jsonl").exists() and (root / "audit" / "log.jsonl").exists():
            write_atomic(root / "audit" / "v1-log.jsonl", (root / "audit" / "log.jsonl").read_bytes(), mode=0o600)
        new_cfg = {k: v for k, v in cfg.items() if k not in ("genesis_records",)}
        new_cfg.update(format=2, genesis_records={}, migrated_from=fingerprint_of(cfg).replace(" ", ""),
                       migrated_by={"name": me, "key": ident.public.line()})
        records.validate(new_cfg, "vault", what="vault.toml")
        files = {}
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and trust.is_record(rel):
                files[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        entry = {"seq": 1, "at": (clock or Clock()).stamp(), "member": me, "action": "vault.migrate", "outcome": "ok",
                 "prev": genesis_hash(new_cfg), "records": files, "subject": st, "ref": new_cfg["migrated_from"]}
        entry["sig"] = base64.b64encode(ident.sign(entry_bytes(entry))).decode()
        line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        write_atomic(root / V2_LOG, line + b"\n", mode=0o600)
        cp = records.sign_record({"format": 1, "count": 1, "head": hashlib.sha256(line).hexdigest(), "at": entry["at"]},
                                 signer=me, key=ident)
        # The commit point: vault.toml turns format 2; then the new history takes the log's place.
        records.write_toml(root / "vault.toml", new_cfg)
        replace(root / V2_LOG, root / "audit" / "log.jsonl")
        records.write_toml(root / "audit" / "checkpoint.toml", cp)
        fsync_dir(root / "audit")
        return fingerprint_of(new_cfg)
