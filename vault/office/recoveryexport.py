"""Disaster-recovery export: the whole vault as age files for an offline recovery key, approved by two supervisors [R-3.3.1].

A supervisor asks for an export to named age recipients (``recovery/<E>.toml``, which is also the
first approval); another supervisor approves that request by its hash (``.approval.toml``); one of
the two then writes it. Who approved is taken from the history entries' signers, never from a typed
field; both must still be active supervisors when it is written, and both approvals expire. The
export holds each live document re-wrapped to the recipients (the payload bytes unchanged, so the
``age`` tool opens it), ``dossiers.jsonl.age`` (each dossier's facts, profile and document metadata,
to the same recipients), ``files.txt`` (SHA-256, size and path of every file) and ``MANIFEST.toml``,
signed by the supervisor who wrote it. It is written one dossier at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, TypeVar

from vault.archive import authority, committed, grants, members, numbering, recordtimes
from vault.archive.states import DossierStatus
from vault.archive.exportview import ExportDocument, check_destination, claimed
from vault.archive.recoveryrecords import RecoveryApproval, RecoveryDone, RecoveryRequest
from vault.archive.states import RecoveryExportState
from vault.archive.manifests import load_manifest, read_profile
from vault.crypto import age
from vault.errors import (ConflictError, FormatError, InputError, IntegrityError, NotFoundError,
                          PermissionDeniedError, VaultError)
from vault.store import TMP_PREFIX, fsync_dir, ids, make_dir, records
from vault.store.syncing import sync_files
from vault.store.counting import Progress, no_progress
from vault.store.layout import document_file_name
from vault.i18n import Message, N_

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

SUPERVISOR = "supervisor"  # fixed in code, as for the roots: a policy edit cannot widen who exports everything
#: How long a request (and each approval) stays usable, by default and at most.
DEFAULT_HOURS, MAX_HOURS = 24, 72
MAX_RECIPIENTS = 16
MANIFEST_KIND = "vault-disaster-recovery-1"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
#: A record kind of an export.
K = TypeVar("K", RecoveryRequest, RecoveryApproval, RecoveryDone)


def _rel(no: str, suffix: str = "") -> str:
    return f"recovery/{no}{suffix}.toml"


def _refuse(actor: Actor, action: str, no: str | None, err: VaultError) -> None:
    actor.audit(action, outcome="refused", ref=no)
    raise err


def _require_supervisor(actor: Actor, action: str, no: str | None = None) -> None:
    if SUPERVISOR not in actor.roles:
        _refuse(actor, action, no, PermissionDeniedError(
            N_("member {name} is not a supervisor: a whole-vault export is asked for, approved and written by supervisors"), hint=N_("two supervisors approve a disaster-recovery export"), name=actor.name))


def _fact(v: Vault, no: str) -> dict[str, Any]:
    f = authority.state(v).get("recoveries", {}).get(no)
    if f is None:
        raise NotFoundError(N_("no recovery export {no}"), hint=N_("see 'vault export disaster-recovery list'"), no=no)
    return f


def _load(v: Vault, no: str, suffix: str, kind: type[K]) -> K:
    """A committed record of export ``no``, signed by the member whose entry wrote it."""
    what = _rel(no, suffix)
    try:
        rec = committed.load_record(v, what, kind)
    except FormatError as e:
        raise IntegrityError.from_error(e) from None
    signer = members.verify_by_member(v, rec.to_record(), what=what)
    typed, export = (rec.requested_by, rec.number) if isinstance(rec, RecoveryRequest) else (rec.by, rec.export)
    if signer["name"] != committed.signer_of(v, what) or typed != signer["name"] or export != no:
        raise IntegrityError(N_("{what}: does not say what its history entry says"), what=what)
    return rec


def _request(v: Vault, no: str) -> RecoveryRequest:
    req = _load(v, no, "", RecoveryRequest)
    recordtimes.check(v, _rel(no), req.requested_at, req.expires_at, dt.timedelta(hours=MAX_HOURS))
    return req


def _approval(v: Vault, no: str, req: RecoveryRequest) -> RecoveryApproval:
    appr = _load(v, no, ".approval", RecoveryApproval)
    if appr.request_sha256 != _digest(req):
        raise IntegrityError(N_("{rel}: approves another export"), rel=_rel(no, '.approval'))
    recordtimes.check(v, _rel(no, ".approval"), appr.at, appr.expires_at, dt.timedelta(hours=MAX_HOURS))
    return appr


def _digest(rec: RecoveryRequest | RecoveryApproval) -> str:
    return hashlib.sha256(records.canonical(rec.to_record())).hexdigest()


def _recipients(texts: list[str]) -> list[age.Recipient]:
    if not texts:
        raise InputError(N_("a disaster-recovery export needs at least one --recipient age1…"),
                         hint=N_("the offline recovery key's public line, from 'age-keygen -y KEYFILE'"))
    if len(texts) > MAX_RECIPIENTS:
        raise InputError(N_("at most {MAX_RECIPIENTS} recipients"), MAX_RECIPIENTS=MAX_RECIPIENTS)
    try:
        parsed = [age.parse_recipient(t) for t in texts]
        age.encrypt_bytes(b"", parsed)  # refuses post-quantum and classical recipients mixed
    except (FormatError, ValueError) as e:
        raise InputError(N_("bad recipient: {e}"), hint=N_("give age recipients: age1… (X25519) or age1pq1…"), e=e) from None
    return parsed


def request(actor: Actor, recipients: list[str], *, valid_hours: int = DEFAULT_HOURS) -> str:
    """Ask for a disaster-recovery export to ``recipients``: the first of its two approvals.

    :return: the export number ``E-…``.
    """
    _require_supervisor(actor, "recovery.request")
    _recipients(recipients)
    if not 1 <= valid_hours <= MAX_HOURS:
        raise InputError(N_("an approval lasts 1 to {MAX_HOURS} hours"), param="valid_for", MAX_HOURS=MAX_HOURS)
    v = actor.vault
    with v.lock(exclusive=True):
        no = numbering.next_number(v, "E")
        make_dir(v.root / "recovery")
        now = actor.clock.now()
        rec = actor.sign({"format": 1, "number": no, "recipients": [r.strip() for r in recipients],
                          "requested_by": actor.name, "requested_at": now.strftime(_STAMP),
                          "expires_at": (now + dt.timedelta(hours=valid_hours)).strftime(_STAMP)})
        actor.commit("recovery.request", {_rel(no): records.dump_toml(rec)}, ref=no, obj=no)
    return no


def approve(actor: Actor, no: str, *, valid_hours: int = DEFAULT_HOURS) -> dict[str, Any]:
    """The second approval, by a supervisor other than the one who asked; it names the request by
    its hash and expires with it (or sooner)."""
    ids.recovery_no(no)
    _require_supervisor(actor, "recovery.approve", no)
    v = actor.vault
    with v.lock(exclusive=True):
        f = _fact(v, no)
        req = _request(v, no)
        if f["done"] or f["approved_by"] is not None:
            raise ConflictError(N_("recovery export {no} has already been written") if f["done"]
                                else N_("recovery export {no} is already approved"), no=no)
        if f["by"] == actor.name:
            _refuse(actor, "recovery.approve", no, PermissionDeniedError(
                N_("you asked for recovery export {no}: its second approval is another supervisor's"),
                hint=N_("another supervisor runs 'vault export disaster-recovery approve'"), no=no))
        now = actor.clock.now()
        if now.strftime(_STAMP) >= req.expires_at:
            _refuse(actor, "recovery.approve", no, ConflictError(
                N_("recovery export {no} expired at {expires_at}"), hint=N_("ask for a new one"), no=no, expires_at=req.expires_at))
        until = min(req.expires_at, (now + dt.timedelta(hours=valid_hours)).strftime(_STAMP))
        rec = actor.sign({"format": 1, "export": no, "request_sha256": _digest(req), "by": actor.name,
                          "at": now.strftime(_STAMP), "expires_at": until})
        actor.commit("recovery.approve", {_rel(no, ".approval"): records.dump_toml(rec)}, ref=no, obj=no)
    return show(v, no)


def show(v: Vault, no: str) -> dict[str, Any]:
    """An export's state from the history, with its recipients and expiry."""
    ids.recovery_no(no)
    f = _fact(v, no)
    req = _request(v, no)
    out = {"number": no, "requested_by": f["by"], "requested_at": req.requested_at,
           "recipients": list(req.recipients), "expires_at": req.expires_at, "approved_by": f["approved_by"],
           "state": RecoveryExportState.WRITTEN if f["done"] else RecoveryExportState.APPROVED if f["approved_by"]
           else RecoveryExportState.REQUESTED}
    if f["approved_by"] is not None:
        appr = _approval(v, no, req)
        out.update(approved_at=appr.at, expires_at=min(req.expires_at, appr.expires_at))
    if f["done"]:
        done = _load(v, no, ".done", RecoveryDone)
        out.update(written_by=done.by, written_at=done.at, manifest_sha256=done.manifest_sha256,
                   dossiers=done.dossiers, documents=done.documents)
    elif out["expires_at"] <= v.clock.stamp():
        out["state"] = RecoveryExportState.EXPIRED
    return out


def list_exports(v: Vault) -> list[dict[str, Any]]:
    return [show(v, no) for no in sorted(authority.state(v).get("recoveries", {}))]


def run(actor: Actor, no: str, dest: Path | str, *, progress: Progress | None = None) -> dict[str, Any]:
    """Write approved export ``no`` into the new directory ``dest`` (outside the vault), once.

    :raises PermissionDeniedError: the writer is not one of its two approvers, or an approver is no
        longer an active supervisor. :raises ConflictError: not approved twice, expired, or written.
    """
    ids.recovery_no(no)
    _require_supervisor(actor, "recovery.export", no)
    v = actor.vault
    dest = check_destination(v, dest)
    # Held before the commit point: an output taken since the check is refused, the export unused.
    with claimed(dest, directory=True), v.lock(exclusive=True):
        f = _fact(v, no)
        if f["done"]:
            raise ConflictError(N_("recovery export {no} has already been written"), hint=N_("ask for a new one"), no=no)
        if f["approved_by"] is None:
            _refuse(actor, "recovery.export", no, ConflictError(
                N_("recovery export {no} has one approval; it needs a second supervisor's"),
                hint=N_("another supervisor runs 'vault export disaster-recovery approve {no}'"), no=no))
        req = _request(v, no)
        appr = _approval(v, no, req)
        # The approvers are the entries' signers (f), checked as the history stands now.
        mem = members.all_members(v)
        for who in (f["by"], f["approved_by"]):
            m = mem.get(who)
            if m is None or m["status"] != "active" or SUPERVISOR not in m["roles"]:
                _refuse(actor, "recovery.export", no, PermissionDeniedError(
                    N_("recovery export {no} was approved by {who}, who is no longer an active supervisor"),
                    hint=N_("ask for a new export, approved by two current supervisors"), no=no, who=who))
        if actor.name not in (f["by"], f["approved_by"]):
            _refuse(actor, "recovery.export", no, PermissionDeniedError(
                N_("recovery export {no} is written by one of the supervisors who approved it"),
                hint=N_("{by} or {approved_by} runs it"), no=no, by=f['by'], approved_by=f['approved_by']))
        if actor.clock.stamp() >= min(req.expires_at, appr.expires_at):
            _refuse(actor, "recovery.export", no, ConflictError(
                N_("the approvals of recovery export {no} expired at {time}"),
                hint=N_("ask for a new one"), no=no, time=min(req.expires_at, appr.expires_at)))
        tmp = dest.with_name(f"{TMP_PREFIX}{dest.name}.{secrets.token_hex(4)}")
        tmp.mkdir(mode=0o700)
        try:
            # The bytes of the documents read (all of the vault's, destroyed ones are left out as they go).
            step = (progress or no_progress)(sum(p.stat().st_size for p in v.root.glob("dossiers/*/documents/*.age")))
            manifest = _write(actor, req, appr, tmp, mem, step)
            data = (tmp / "MANIFEST.toml").read_bytes()
            done = actor.sign({"format": 1, "export": no, "request_sha256": manifest["request_sha256"],
                               "approval_sha256": manifest["approval_sha256"], "by": actor.name,
                               "at": manifest["exported_at"], "manifest_sha256": hashlib.sha256(data).hexdigest(),
                               "dossiers": manifest["dossiers"], "documents": manifest["documents"]})
            # The commit point: once recorded, the export exists (and is used up).
            actor.commit("recovery.export", {_rel(no, ".done"): records.dump_toml(done)}, ref=no, obj=no)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    return {**show(v, no), "output": str(dest)}


class _Hashed:
    """A file being written, hashed and counted as it goes."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.h, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes | memoryview, /) -> int:
        n = self.f.write(data)  # a partial write is hashed as far as it went
        self.h.update(data[:n])
        self.size += n
        return n

    def flush(self) -> None:
        self.f.flush()


def _write(actor: Actor, req: RecoveryRequest, appr: RecoveryApproval, out: Path, mem: dict,
           step: Callable[[int], None]) -> dict[str, Any]:
    v = actor.vault
    recipients = _recipients(list(req.recipients))
    (out / "documents").mkdir(mode=0o700)
    written: list[Path] = []
    n_dossiers = n_docs = 0

    def note(name: str, h: _Hashed) -> None:
        listing_file.write(f"{h.h.hexdigest()}  {h.size}  {name}\n".encode())
        written.append(out / name)

    with open(out / "files.txt", "xb") as listing_raw:
        listing_file = _Hashed(listing_raw)
        with open(out / "dossiers.jsonl.age", "xb") as raw:
            reg = _Hashed(raw)
            enc = age.Encryptor(reg, recipients)
            for _number, dossier_id in sorted(authority.state(v)["numbers"].items()):
                m = load_manifest(v, dossier_id, member_records=mem)
                if m.status == DossierStatus.DESTROYED:
                    continue
                table = grants.open_key_table(actor, dossier_id, number=m.number)
                docs = []
                for d in m.documents:
                    if d.is_destroyed:
                        continue
                    doc = ExportDocument(d.to_record(), dossier=m.number, granted=frozenset({"content", "sealed"}),
                                         table=table, path=v.layout.document(dossier_id, d.id), step=step)
                    name = f"documents/{document_file_name(d.number)}.age"
                    with open(out / name, "xb") as f:
                        h = _Hashed(f)
                        doc.rewrap(h, list(req.recipients))  # type: ignore[arg-type]  # a Sink, as rewrap needs
                    note(name, h)
                    docs.append({**doc.facts, **(doc.meta() if doc.readable else {}), "file": name})
                    n_docs += 1
                line: dict[str, Any] = {**m.facts(), "closed": m.closed}
                line.update(profile=read_profile(actor, m, table), documents=docs)
                enc.write((json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode())
                n_dossiers += 1
            enc.close()
        note("dossiers.jsonl.age", reg)
        readme = ("Disaster-recovery export of a vault: one age file per live document under documents/,\n"
                  "dossiers.jsonl.age (each dossier's facts, profile and document metadata, one JSON line\n"
                  "each), files.txt (SHA-256, size, path) and MANIFEST.toml (signed by the supervisor who\n"
                  "wrote it). Open with the recovery key:\n\n"
                  "    age -d -i recovery-key.txt -o dossiers.jsonl dossiers.jsonl.age\n").encode()
        (out / "README.txt").write_bytes(readme)
    listing_sha = hashlib.sha256((out / "files.txt").read_bytes()).hexdigest()
    manifest = {"format": 1, "kind": MANIFEST_KIND, "export": req.number, "vault_id": v.config["id"],
                "request_sha256": _digest(req), "approval_sha256": _digest(appr),
                "requested_by": req.requested_by, "approved_by": appr.by, "exported_by": actor.name,
                "exported_at": actor.clock.stamp(), "recipients": list(req.recipients), "dossiers": n_dossiers,
                "documents": n_docs, "files_sha256": listing_sha}
    (out / "MANIFEST.toml").write_bytes(records.dump_toml(actor.sign(manifest)))
    sync_files([*written, out / "files.txt", out / "README.txt", out / "MANIFEST.toml"])
    fsync_dir(out / "documents")
    fsync_dir(out)
    return manifest


def verify(v: Vault, path: Path | str) -> dict[str, Any]:
    """Check a written export against its signed manifest: the signature (a member of this vault),
    the record the history keeps of it, and every file's size and SHA-256. No key is needed."""
    root = Path(path)
    try:
        man = tomllib.loads((root / "MANIFEST.toml").read_text(encoding="utf-8"))
        listing = (root / "files.txt").read_bytes()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise IntegrityError(N_("{root}: not a disaster-recovery export ({e})"), root=root, e=e) from None
    if man.get("kind") != MANIFEST_KIND or man.get("vault_id") != v.config["id"]:
        raise IntegrityError(N_("{root}/MANIFEST.toml: not an export of this vault"), root=root)
    members.verify_by_member(v, man, what=f"{root}/MANIFEST.toml")
    no = ids.recovery_no(man.get("export"), what=f"{root}/MANIFEST.toml")
    done = show(v, no)
    digest = hashlib.sha256((root / "MANIFEST.toml").read_bytes()).hexdigest()
    if done["state"] != "written" or done["manifest_sha256"] != digest or man["signature"]["by"] != done["written_by"]:
        raise IntegrityError(N_("{root}/MANIFEST.toml: not the manifest the history recorded for {no}"), root=root, no=no)
    if hashlib.sha256(listing).hexdigest() != man.get("files_sha256"):
        raise IntegrityError(N_("{root}/files.txt: changed since the manifest was signed"), root=root)
    problems = []
    count = 0
    for line in listing.decode().splitlines():
        sha, size, name = line.split("  ", 2)
        p = root / name
        if ".." in Path(name).parts or not p.is_file():
            problems.append(Message(N_("{name}: missing"), name=name))
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        if h.hexdigest() != sha or p.stat().st_size != int(size):
            problems.append(Message(N_("{name}: changed"), name=name))
        count += 1
    return {"export": no, "ok": not problems, "files": count, "problems": problems,
            "exported_by": man["exported_by"], "requested_by": man["requested_by"], "approved_by": man["approved_by"]}
