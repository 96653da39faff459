"""Attacks on authority, played as the attacker: their own key, the library, and file edits.

Each attack class of the threat model (SECURITY.md, "Authority") is one test here: the attack is
refused by the command or named by ``vault check``, and never yields plaintext — the attacker's
identity opens no key table, ring or key release, and no marker is in clear under the vault.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from office import MARKERS, PASSPHRASE, TWO_DEPTS
from vault import clock
from vault.archive import audit, authority, committed, grants, members
from vault.archive.vault import Actor, Vault
from vault.crypto import age
from vault.errors import IntegrityError, NoIdentityMatchError, PermissionDeniedError, VaultError
from vault.store import identity, records


pytestmark = pytest.mark.office(("carol", "supervisor", "archive"), *TWO_DEPTS)


@pytest.fixture
def office(office, tmp_path):
    """Dossier a in sales and b in dev, each with one document."""
    o = office
    o.a = o.create(name=MARKERS["name"], contact=MARKERS["contact"])
    o.b = o.create(name="Other Customer Ltd", dept="dev")
    f = tmp_path / "doc.txt"
    f.write_text(MARKERS["content"])
    o.doc_a = o.add_doc(o.a, f)
    o.doc_b = o.add_doc(o.b, f)
    return o


def _vault(office) -> Vault:
    return Vault.open(office.vault_dir)


def _ident(office, who: str):
    return identity.load_identity(office.ident(who), PASSPHRASE)


def _attacker(office, who: str) -> Actor:
    """An Actor for ``who`` built straight from the library, so act_as's refusal of a former member
    does not stop them: they sign and append with their own key as any program could."""
    v = _vault(office)
    ident = _ident(office, who)
    rec = {"name": who, **authority.state(v)["members"][who]}
    return Actor(v, rec, ident)


def _id_of(office, number: str) -> str:
    return authority.state(_vault(office))["numbers"][number]


def _forged_request(office, who: str, number: str, *, dossier: str, requester: str | None = None) -> Actor:
    """``who``, with their own key, files access request ``number`` for dossier a's number but naming
    ``dossier``, as ``requester`` (``who`` unless given) of sales, whatever the member records say."""
    signer = _attacker(office, who)
    rec = signer.sign({"format": 1, "number": number, "kind": "access", "target": office.a, "dossier": dossier,
                       "requester": requester or who, "dept": "sales", "created_at": clock.stamp(), "purpose": "x"})
    audit.commit(signer, "request.access", {f"requests/{number}.toml": records.dump_toml(rec)}, number=office.a,
                 ref=number, obj=dossier)
    return signer


def _check(office, *extra: str) -> list[str]:
    res = office.run("check", "--json", *extra, ok=False)
    return json.loads(res.stdout)["problems"]


def _assert_named(office, fragment: str, *extra: str) -> None:
    problems = _check(office, *extra)
    assert any(fragment in p for p in problems), problems


def _reads_nothing(office, who: str) -> None:
    """``who``'s identity opens no key table, ring, intake key or key release, and no customer
    marker is in clear anywhere under the vault."""
    ident = _ident(office, who).age_identity()
    for p in [*office.vault_dir.glob("keys/**/*.age"), *office.vault_dir.glob("rings/*.age")]:
        data = p.read_bytes()
        if not data:
            continue
        with pytest.raises(NoIdentityMatchError):
            age.decrypt_bytes(data, [ident])
    for p in office.vault_dir.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for m in MARKERS.values():
                assert m.encode() not in data, (p, m)


def _view(office, who: str, docno: str) -> bytes:
    """View a document through the library, as a member outside the archive does on a terminal."""
    import io

    from vault.office import documents

    out = io.BytesIO()
    documents.view(_vault(office).act_as(_ident(office, who)), docno, out)
    return out.getvalue()


def _refused(res, fragment: str = "") -> None:
    assert res.exit_code != 0 and "Traceback" not in res.output and fragment in res.stderr, res.output


# -- 1. A former member keeps no power -------------------------------------------------------------

@pytest.mark.usefixtures("unjudged")
def test_removed_supervisor_cannot_add_a_member_or_change_policy_or_rings(office, tmp_path):
    office.run("member", "remove", "carol", who="alice")
    carol = _attacker(office, "carol")
    v = carol.vault
    # A member record for an accomplice, signed by carol and committed with a history entry.
    office.keygen("mallory")
    key = identity.PublicKey.parse(office.keys["mallory"])
    rec = carol.sign({"format": 1, "name": "mallory", "key": key.line(), "roles": ["supervisor"], "dept": "archive",
                      "status": "active", "added_at": clock.stamp(), "added_by": "carol"})
    audit.commit(carol, "member.add", {"members/mallory.toml": records.dump_toml(rec)}, obj="mallory",
                 subject={"key": key.line(), "roles": ["supervisor"], "dept": "archive"})
    # A policy giving staff every right, and a ring record pointing at a key carol holds.
    pol = dict(v.policy.data)
    pol["roles"] = {**pol["roles"], "staff": {**pol["roles"]["staff"], "may": pol["roles"]["supervisor"]["may"]}}
    (office.vault_dir / "policy").mkdir(exist_ok=True)
    data = records.dump_toml(carol.sign(pol))
    audit.commit(carol, "policy.update", {"policy/2.toml": data, "policy.toml": data}, ref="2")
    ring_secret = age.generate_identity("mlkem768x25519")
    ring = carol.sign({"format": 1, "name": "archive", "generation": 9, "recipient": age.recipient_of(ring_secret),
                       "members": ["carol"], "updated_at": clock.stamp(), "updated_by": "carol"})
    audit.commit(carol, "member.add", {"rings/archive.toml": records.dump_toml(ring)}, obj="carol2",
                 subject={"key": "x", "roles": [], "dept": "x"})

    # Mallory is nobody, the policy in force is unchanged, and writes refuse to use carol's ring.
    _refused(office.run("dossier", "show", office.a, who="mallory", ok=False), "not a member")
    assert "request.approve-access" not in _vault(office).policy.data["roles"]["staff"]["may"]
    res = office.run("doc", "add", office.a, str(tmp_path / "doc.txt"), "--category", "other", "--source", "s",
                     "--date", "2026-01-01", "--original", who="bob", ok=False)
    _refused(res, "rings/archive.toml")
    problems = _check(office)
    for frag in ("member.add by carol): counts for nothing: carol was removed",
                 "policy.update by carol): counts for nothing: carol was removed",
                 "members/mallory.toml: no history entry names this record",
                 "rings/archive.toml: changed"):
        assert any(frag in p for p in problems), (frag, problems)
    _reads_nothing(office, "carol")


@pytest.mark.usefixtures("unjudged")
def test_removed_dept_head_cannot_approve(office):
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("member", "remove", "head-sales", who="alice")
    head = _attacker(office, "head-sales")
    dec = head.sign({"format": 1, "request": req, "request_sha256": "0" * 64, "decision": "approved",
                     "by": "head-sales", "at": clock.stamp()})
    audit.commit(head, "request.approve", {f"requests/{req}.decision.toml": records.dump_toml(dec)}, obj=req)
    _refused(office.run("grant", req, who="bob", ok=False), "not approved")
    _assert_named(office, "counts for nothing: head-sales was removed")
    _reads_nothing(office, "staff-sales")


# -- 2. One decision, one object --------------------------------------------------------------------

@pytest.mark.usefixtures("unjudged")
def test_an_approval_for_one_dossier_does_not_open_another(office):
    """A request that shows dossier A's number but names dossier B's id counts for nothing."""
    b_id = _id_of(office, office.b)
    staff = _forged_request(office, "staff-sales", "R-000099", dossier=b_id)
    _refused(office.run("request", "approve", "R-000099", who="head-sales", ok=False), "no request R-000099")
    _assert_named(office, f"names number {office.a} but dossier {b_id} is {office.b}")
    # The honest variant: approved for A, then the request file edited to name B.
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    p = office.vault_dir / "requests" / f"{req}.toml"
    edited = records.load_toml(p)
    edited["dossier"] = b_id
    p.write_bytes(records.dump_toml(staff.sign(edited)))
    _refused(office.run("grant", req, who="bob", ok=False), f"requests/{req}.toml")
    _reads_nothing(office, "staff-sales")


@pytest.mark.usefixtures("unjudged")
def test_one_person_cannot_fill_both_seats(office):
    """Two-person rules compare the signers of the entries, never a typed requested_by/requester."""
    carol = _attacker(office, "carol")
    a_id = _id_of(office, office.a)
    # carol files a destruction typed as alice's, then approves it herself.
    rec = carol.sign({"format": 1, "number": "D-000099", "target": office.a, "dossier": a_id, "requested_by": "alice",
                      "requested_at": clock.stamp(), "reason": "x"})
    audit.commit(carol, "destroy.request", {"destructions/D-000099.toml": records.dump_toml(rec)}, number=office.a,
                 ref="D-000099", obj=a_id)
    _refused(office.run("destroy", "approve", "D-000099", who="carol", ok=False), "destructions/D-000099.toml")
    appr = carol.sign({"format": 1, "destruction": "D-000099", "request_sha256": "0" * 64, "by": "carol",
                       "at": clock.stamp()})
    audit.commit(carol, "destroy.approve", {"destructions/D-000099.approval.toml": records.dump_toml(appr)},
                 obj="D-000099")
    _refused(office.run("destroy", "execute", "D-000099", who="alice", ok=False))
    _assert_named(office, "a destruction is approved by a supervisor other than its requester")
    # A department head files a request typed as their staff's and approves it.
    head = _forged_request(office, "head-sales", "R-000098", dossier=a_id, requester="staff-sales")
    _refused(office.run("request", "approve", "R-000098", who="head-sales", ok=False))
    dec = head.sign({"format": 1, "request": "R-000098", "request_sha256": "0" * 64, "decision": "approved",
                     "by": "head-sales", "at": clock.stamp()})
    audit.commit(head, "request.approve", {"requests/R-000098.decision.toml": records.dump_toml(dec)}, obj="R-000098")
    _refused(office.run("grant", "R-000098", who="bob", ok=False))
    _assert_named(office, "head-sales decides their own request R-000098")
    assert office.run("doc", "view", office.doc_a, who="bob").stdout == MARKERS["content"]
    _reads_nothing(office, "head-sales")


def test_destruction_is_not_re_resolved_through_the_index(office):
    no = office.json("destroy", "request", office.a, "--reason", "done", who="alice")["number"]
    office.run("destroy", "approve", no, "--override-retention", "court order", who="carol")
    # The attacker points A's number at B in the unsigned index.
    import hashlib

    h = hashlib.sha256(office.a.encode()).hexdigest()
    p = office.vault_dir / "index" / "numbers" / h[:2] / h
    p.write_text(f"{office.a}\n{_id_of(office, office.b)}\n")
    office.run("destroy", "execute", no, who="alice")
    # B is intact, A is gone.
    assert office.run("doc", "view", office.doc_b, who="bob").stdout == MARKERS["content"]
    _refused(office.run("doc", "view", office.doc_a, who="bob", ok=False), "destroyed")


def test_a_certificate_copied_from_another_destruction_is_refused(office):
    d1 = office.json("destroy", "request", office.doc_a, "--reason", "x", who="alice")["number"]
    office.run("destroy", "approve", d1, "--override-retention", "court order", who="carol")
    office.run("destroy", "execute", d1, who="alice")
    d2 = office.json("destroy", "request", office.doc_b, "--reason", "x", who="alice")["number"]
    office.run("destroy", "approve", d2, "--override-retention", "court order", who="carol")
    d = office.vault_dir / "destructions"
    shutil.copy(d / f"{d1}.certificate.toml", d / f"{d2}.certificate.toml")
    _refused(office.run("destroy", "certificate", d2, who="alice", ok=False), "no destruction")
    _assert_named(office, f"destructions/{d2}.certificate.toml: no history entry names this record")
    assert office.run("doc", "view", office.doc_b, who="bob").stdout == MARKERS["content"]


@pytest.mark.usefixtures("unjudged")
def test_a_self_declared_department_is_not_believed(office):
    """staff-dev types dept = "sales" into their request; the member record says dev."""
    a_id = _id_of(office, office.a)
    _forged_request(office, "staff-dev", "R-000097", dossier=a_id)
    _refused(office.run("request", "approve", "R-000097", who="head-sales", ok=False), "department dev")
    head = _attacker(office, "head-sales")
    dec = head.sign({"format": 1, "request": "R-000097", "request_sha256": "0" * 64, "decision": "approved",
                     "by": "head-sales", "at": clock.stamp()})
    audit.commit(head, "request.approve", {"requests/R-000097.decision.toml": records.dump_toml(dec)}, obj="R-000097")
    _refused(office.run("grant", "R-000097", who="bob", ok=False), "not approved")
    _assert_named(office, "head-sales is not a head of department dev")
    _reads_nothing(office, "staff-dev")


@pytest.mark.usefixtures("unjudged")
def test_a_liaison_of_another_department_updates_nothing(office, monkeypatch):
    """[R-2.2, R-3.5.1] a liaison updates their own department's dossiers (through a grant); a grant
    to another department's dossier does not widen that, whatever the procedure is made to skip."""
    office.add_member("liaison-sales", "liaison", dept="sales")
    office.add_member("liaison-dev", "liaison", dept="dev")

    def granted(who: str, head: str) -> None:
        req = office.json("request", "access", office.a, "--purpose", "verify the profile", who=who)["number"]
        office.run("request", "approve", req, who=head)
        office.json("grant", req, who="bob")

    granted("liaison-sales", "head-sales")
    office.run("dossier", "update", office.a, "--note", "verified by sales", who="liaison-sales")
    assert _check(office) == []
    path = f"dossiers/{_id_of(office, office.a)}/manifest.toml"
    legit = committed.committed(_vault(office), path)
    # liaison-dev holds a grant to the sales dossier, approved by their own head.
    granted("liaison-dev", "head-dev")
    _refused(office.run("dossier", "update", office.a, "--note", "x", who="liaison-dev", ok=False), "may not update")
    # Nor does an invitation for another department's dossier count, issued past the procedure's check.
    from vault.archive import invitations as inv_records
    from vault.office import invitations

    monkeypatch.setattr(invitations, "may_invite", lambda v, signer, dept: True)
    inv = invitations.issue(_vault(office).act_as(_ident(office, "liaison-dev")), office.a)
    _assert_named(office, "liaison-dev (dev) may invite only for a dossier of their own department")
    with pytest.raises(VaultError):
        inv_records.load(_vault(office), inv["id"])
    # With their own copy of the library, which skips the procedure's check, the update is committed…
    from vault.office import maintenance

    monkeypatch.setattr(maintenance, "_may_update", lambda actor, m: None)
    maintenance.update(_vault(office).act_as(_ident(office, "liaison-dev")), office.a, {"notes": "forged by dev"})
    # …and counts for nothing: the member record (signed by a supervisor) says dev, the dossier is sales's.
    _assert_named(office, "liaison-dev (dev) may update only a dossier of their own department")
    assert committed.committed(_vault(office), path) == legit
    with pytest.raises(IntegrityError, match="does not match history"):
        _view(office, "bob", office.doc_a)
    for p in office.vault_dir.rglob("*"):  # the grant is a read right, legitimately: no plaintext is on disk
        assert not p.is_file() or not any(m.encode() in p.read_bytes() for m in MARKERS.values()), p


# -- 3. Facts are append-only -----------------------------------------------------------------------

def test_deleting_a_fact_file_reverts_nothing(office, tmp_path):
    def granted() -> tuple[str, str]:
        req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
        office.run("request", "approve", req, who="head-sales")
        return req, office.json("grant", req, who="bob")["number"]

    _, g1 = granted()
    office.run("grant", "revoke", g1, who="bob")
    (office.vault_dir / "grants" / f"{g1}.closed.toml").unlink()
    with pytest.raises(PermissionDeniedError, match="no active grant"):
        _view(office, "staff-sales", office.doc_a)
    assert office.json("grant", "list", who="bob")[0]["state"] == "revoked"
    denied = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "deny", denied, "--reason", "no", who="head-sales")
    (office.vault_dir / "requests" / f"{denied}.decision.toml").unlink()
    _refused(office.run("grant", denied, who="bob", ok=False))
    granted()  # a live grant: the export below needs the keys as well as the copy approval
    copy = office.json("request", "copy", office.doc_a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", copy, who="alice")
    office.run("doc", "export", office.doc_a, "--output", str(tmp_path / "out"), who="staff-sales")
    (office.vault_dir / "requests" / f"{copy}.used.toml").unlink()
    res = office.run("doc", "export", office.doc_a, "--output", str(tmp_path / "again"), who="staff-sales", ok=False)
    _refused(res, "no approved copy request")
    problems = _check(office)
    for rel in (f"grants/{g1}.closed.toml", f"requests/{denied}.decision.toml", f"requests/{copy}.used.toml"):
        assert any(p.startswith(f"{rel}: missing") for p in problems), (rel, problems)


# -- 4. History is not rewritten --------------------------------------------------------------------

def test_a_cut_tail_with_a_re_signed_checkpoint_is_caught(office, tmp_path):
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    g = office.json("grant", req, who="bob")["number"]
    anchor = office.run("audit", "anchor").stdout.strip()
    office.run("grant", "revoke", g, who="bob")
    # staff-sales cuts the revocation off the history and re-signs the checkpoint with their own key.
    log = office.vault_dir / "audit" / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    cut = [x for x in lines if b'"grant.revoke"' not in x]
    cut = cut[: next(i for i, x in enumerate(lines) if b'"grant.revoke"' in x)]
    log.write_bytes(b"".join(cut))
    staff = Actor(Vault.open(office.vault_dir), {"name": "staff-sales", "roles": ["staff"]}, _ident(office, "staff-sales"))
    last = json.loads(cut[-1])
    import hashlib

    cp = staff.sign({"format": 1, "count": last["seq"], "head": hashlib.sha256(cut[-1].rstrip(b"\n")).hexdigest(),
                     "at": clock.stamp()})
    records.write_toml(office.vault_dir / "audit" / "checkpoint.toml", cp)
    (office.vault_dir / "grants" / f"{g}.closed.toml").unlink()
    # This client remembers the longer history.
    with pytest.raises(IntegrityError, match="history cut or rolled back"):
        _view(office, "staff-sales", office.doc_a)
    # A fresh client with an anchor from before the revocation sees a consistent prefix…
    fresh = tmp_path / "fresh-client"
    res = office.run("check", "--json", "--anchor", anchor, ok=False, env={"VAULT_STATE_DIR": str(fresh)})
    assert res.exit_code == 0 or "history cut" not in res.stdout
    # …but an anchor taken after the revocation (kept offline by the administrator) catches it.
    lines_full = lines
    head = hashlib.sha256(lines_full[-1].rstrip(b"\n")).hexdigest()
    fp = _vault(office).fingerprint.replace(" ", "")
    later = f"vault-anchor-1 {fp} {len(lines_full)} {head}"
    res = office.run("check", "--json", "--anchor", later, ok=False, env={"VAULT_STATE_DIR": str(fresh / "2")})
    assert any("the anchor verified entry" in p for p in json.loads(res.stdout)["problems"])


def _forge(office, action: str, **fields) -> None:
    """Append an entry in bob's name that bob never signed (well formed, linked, a bad signature)."""
    import base64
    import hashlib

    log = office.vault_dir / "audit" / "log.jsonl"
    last = log.read_bytes().splitlines()[-1]
    e = {"seq": json.loads(last)["seq"] + 1, "at": clock.stamp(), "member": "bob", "action": action, "outcome": "ok",
         "prev": hashlib.sha256(last).hexdigest(), **fields, "sig": base64.b64encode(bytes(64)).decode()}
    with open(log, "ab") as f:
        f.write(json.dumps(e, sort_keys=True, separators=(",", ":")).encode() + b"\n")


def test_a_forged_entry_that_changes_state_is_refused_by_every_command(office, tmp_path):
    """A command's replay skips no signature of an entry that could change the state."""
    _forge(office, "hold.add", obj=_id_of(office, office.a), number=office.a)
    fresh = {"VAULT_STATE_DIR": str(tmp_path / "fresh")}
    res = office.run("doc", "view", office.doc_a, "--output", str(tmp_path / "o"), who="bob", ok=False, env=fresh)
    _refused(res, "bad signature")
    assert not (tmp_path / "o").exists()


def test_a_forged_read_entry_is_named_by_check(office, tmp_path, monkeypatch):
    """A read changes nothing, so a command's first replay does not check its signature (FORMAT
    §18.3); ``vault check`` and ``vault audit verify`` check every one."""
    before = authority.state(_vault(office))
    _forge(office, "doc.view", number=office.doc_a)
    fresh = {"VAULT_STATE_DIR": str(tmp_path / "fresh")}
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path / "fresh-library"))
    res = office.run("check", "--json", ok=False, env=fresh)
    assert res.exit_code != 0 and "bad signature" in res.output, res.output
    res = office.run("audit", "verify", ok=False, env=fresh)
    assert res.exit_code != 0 and "bad signature" in res.output, res.output
    # What a command allows is what the signed entries allow: the forged read changed nothing.
    after = authority.state(Vault.open(office.vault_dir))
    assert {k: after[k] for k in ("members", "grants", "holds", "files")} == \
        {k: before[k] for k in ("members", "grants", "holds", "files")}


def test_an_older_signed_version_put_back_is_named(office, tmp_path):
    a_id = _id_of(office, office.a)
    man = office.vault_dir / "dossiers" / a_id / "manifest.toml"
    old_manifest = man.read_bytes()
    f = tmp_path / "more.txt"
    f.write_text("more")
    office.add_doc(office.a, f)
    man.write_bytes(old_manifest)
    _refused(office.run("doc", "list", office.a, who="bob", ok=False), f"dossiers/{a_id}/manifest.toml")
    _assert_named(office, f"dossiers/{a_id}/manifest.toml: rolled back")
    # Policy: version 2 is in force; version 1 put back is named and not believed.
    pol = office.vault_dir / "policy.toml"
    old_policy = pol.read_bytes()
    data = records.load_toml(pol)
    data["review"]["default_days"] = 100
    new = tmp_path / "policy.toml"
    new.write_bytes(records.dump_toml(data))
    office.run("policy", "update", str(new), who="alice")
    pol.write_bytes(old_policy)
    assert _vault(office).policy.data["review"]["default_days"] == 100
    _assert_named(office, "policy.toml: rolled back")
    # Member: carol removed; her active record put back.
    mem = office.vault_dir / "members" / "carol.toml"
    old_member = mem.read_bytes()
    office.run("member", "remove", "carol", who="alice")
    mem.write_bytes(old_member)
    _refused(office.run("dossier", "show", office.a, who="carol", ok=False), "removed")
    _assert_named(office, "members/carol.toml: rolled back")


# -- 5. Removal is complete -------------------------------------------------------------------------

def test_a_grant_active_at_removal_releases_nothing_later(office, tmp_path):
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    g = office.json("grant", req, who="bob")["number"]
    office.run("member", "remove", "staff-sales", who="alice")
    assert not list((office.vault_dir / "keys" / "grants").glob("*.age"))
    f = tmp_path / "later.txt"
    f.write_text(MARKERS["content"] + " later")
    office.add_doc(office.a, f)
    assert not list((office.vault_dir / "keys" / "grants").glob("*.age"))
    assert {x["number"]: x["state"] for x in office.json("grant", "list", who="bob")}[g] == "member-removed"
    _reads_nothing(office, "staff-sales")
    assert _check(office) == []


# -- 6. Procedure records say what their entries say -------------------------------------------------

def _commit_hold(office, who: str, dossier: str, *, number: str, by: str, sign_as: str | None = None) -> None:
    """``who``, with their own key and the library, places a hold on ``dossier`` whose record says
    ``by`` placed it on ``number`` (signed with ``who``'s key under the name ``sign_as``)."""
    signer = _attacker(office, who)
    v = _vault(office)
    rec = records.sign_record({"format": 1, "dossier": dossier, "number": number, "at": clock.stamp(), "by": by,
                               "reason": members.seal_text(v, "r")}, signer=sign_as or who, key=signer.identity)
    (office.vault_dir / "holds").mkdir(exist_ok=True)
    audit.commit(signer, "hold.add", {f"holds/{dossier}.toml": records.dump_toml(rec)},
                 number=authority.state(v)["dossiers"][dossier]["number"], obj=dossier)


def test_a_hold_or_a_lift_is_shown_only_as_its_entry_wrote_it(office):
    """An archivist may place holds, a supervisor lift them, but neither in another member's name
    nor on another dossier's number: a hold saying carol placed it, one on dossier b showing a's
    number, and a lift saying carol lifted what alice lifted (a signature under carol's name made
    with alice's key) are refused by ``hold list`` and named by ``vault check``."""
    a_id, b_id = _id_of(office, office.a), _id_of(office, office.b)
    _commit_hold(office, "bob", a_id, number=office.a, by="carol", sign_as="carol")
    _refused(office.run("hold", "list", who="bob", ok=False), f"holds/{a_id}.toml")
    _assert_named(office, f"holds/{a_id}.toml")
    office.run("hold", "remove", office.a, "--reason", "r", who="alice")
    _commit_hold(office, "bob", b_id, number=office.a, by="bob")
    _refused(office.run("hold", "list", who="bob", ok=False), f"holds/{b_id}.toml")
    _assert_named(office, f"holds/{b_id}.toml")
    # The lift: alice's entry, a record naming carol.
    alice = _attacker(office, "alice")
    v = _vault(office)
    rec = records.sign_record({"format": 1, "dossier": b_id, "number": office.b, "seq": 1, "hold_at": clock.stamp(),
                               "hold_by": "bob", "hold_sha256": "0" * 64, "at": clock.stamp(), "by": "carol",
                               "reason": members.seal_text(v, "r")}, signer="carol", key=alice.identity)
    (office.vault_dir / "holds" / "lifted").mkdir(exist_ok=True)
    audit.commit(alice, "hold.remove", {f"holds/lifted/{b_id}.1.toml": records.dump_toml(rec),
                                        f"holds/{b_id}.toml": None}, number=office.b, obj=b_id, ref="lift-1")
    _refused(office.run("hold", "list", "--lifted", who="bob", ok=False), f"holds/lifted/{b_id}.1.toml")
    _assert_named(office, f"holds/lifted/{b_id}.1.toml")


@pytest.mark.parametrize("case", ["another-placer", "another-time", "as-lift-writes-it"])
def test_a_lift_names_the_hold_it_ends_as_the_history_placed_it(office, case):
    """A supervisor's lift written with the library that says the hold was placed by another member
    than the one whose entry placed it, or at another time (a year earlier), is refused by ``hold
    list --lifted`` and named by ``vault check``; the lift ``hold remove`` writes is shown."""
    office.run("hold", "add", office.b, "--reason", "court", who="bob")
    b_id = _id_of(office, office.b)
    if case == "as-lift-writes-it":
        office.run("hold", "remove", office.b, "--reason", "r", who="alice")
        rows = office.json("hold", "list", "--lifted", who="bob")
        assert [(r["number"], r["hold_by"]) for r in rows] == [(office.b, "bob")]
        assert _check(office) == []
        return
    placed = committed.load(_vault(office), f"holds/{b_id}.toml")
    alice = _attacker(office, "alice")
    v = _vault(office)
    hold_at = f"{int(placed['at'][:4]) - 1}{placed['at'][4:]}" if case == "another-time" else placed["at"]
    rec = alice.sign({"format": 1, "dossier": b_id, "number": office.b, "seq": 1, "hold_at": hold_at,
                      "hold_by": "carol" if case == "another-placer" else "bob", "hold_sha256": "0" * 64,
                      "at": clock.stamp(), "by": "alice", "reason": members.seal_text(v, "r")})
    (office.vault_dir / "holds" / "lifted").mkdir(exist_ok=True)
    audit.commit(alice, "hold.remove", {f"holds/lifted/{b_id}.1.toml": records.dump_toml(rec),
                                        f"holds/{b_id}.toml": None}, number=office.b, obj=b_id, ref="lift-1")
    _refused(office.run("hold", "list", "--lifted", who="bob", ok=False), f"holds/lifted/{b_id}.1.toml: says the hold")
    _assert_named(office, f"holds/lifted/{b_id}.1.toml: says the hold")


def test_a_grant_shows_the_number_its_request_names(office):
    """An archivist's grant written with the library for an approved request of dossier a, its
    record naming dossier b's number: ``grant list`` would show staff holding a grant on b (the
    key release is a's). It is refused by ``grant list`` and named by ``vault check``."""
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    bob = _attacker(office, "bob")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    rec = bob.sign({"format": 1, "number": "G-000099", "request": req, "dossier": _id_of(office, office.a),
                    "target": office.b, "grantee": "staff-sales", "granted_at": clock.stamp(),
                    "expires_at": later.strftime("%Y-%m-%dT%H:%M:%SZ"), "approval_sha256": "0" * 64})
    (office.vault_dir / "grants").mkdir(exist_ok=True)
    audit.commit(bob, "grant.create", {"grants/G-000099.toml": records.dump_toml(rec)}, number=office.a,
                 ref="G-000099", obj=req)
    _refused(office.run("grant", "list", who="bob", ok=False), "grants/G-000099.toml")
    _assert_named(office, "grants/G-000099.toml")


def test_a_decision_record_says_what_its_entry_decided(office):
    """A department head approves a request with the library, the decision record saying it was
    denied by the other department's head, with a reason, and naming another request: ``request
    show`` would give the approved request that denial's reason. It is refused and named by
    ``vault check``."""
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    other = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    head = _attacker(office, "head-sales")
    v = _vault(office)
    digest = grants._digest(grants.request_record(v, other))
    dec = records.sign_record({"format": 1, "request": other, "request_sha256": digest, "decision": "denied",
                               "by": "head-dev", "at": clock.stamp(),
                               "reason": members.seal_text(v, "no", ["staff-sales"])},
                              signer="head-dev", key=head.identity)
    audit.commit(head, "request.approve", {f"requests/{req}.decision.toml": records.dump_toml(dec)},
                 number=office.a, ref=req, obj=req)
    _refused(office.run("request", "show", req, who="staff-sales", ok=False), f"requests/{req}.decision.toml")
    _assert_named(office, f"requests/{req}.decision.toml")


# -- 7. A commit the history counts for nothing puts nothing in place --------------------------------

def test_a_commit_the_history_counts_for_nothing_puts_nothing_in_place_and_fails(office, monkeypatch):
    """A command whose own checks are weaker than the trust table's (a bug, or a member calling the
    library) must not say it succeeded nor put in place what its entry names: the entry counts for
    nothing, its files are dropped before their renames, and the command fails in one line naming
    why. With the library: staff places a hold, which only the archive department may."""
    a_id = _id_of(office, office.a)
    staff = _attacker(office, "staff-sales")
    v = _vault(office)
    rec = records.sign_record({"format": 1, "dossier": a_id, "number": office.a, "at": clock.stamp(),
                               "by": "staff-sales", "reason": members.seal_text(v, "r")},
                              signer="staff-sales", key=staff.identity)
    (office.vault_dir / "holds").mkdir(exist_ok=True)
    with pytest.raises(IntegrityError, match="counts this hold.add for nothing") as err:
        audit.commit(staff, "hold.add", {f"holds/{a_id}.toml": records.dump_toml(rec)}, number=office.a, obj=a_id)
    assert "staff-sales" in str(err.value) and "may not" in str(err.value)
    assert not (office.vault_dir / "holds" / f"{a_id}.toml").exists()
    assert not list((office.vault_dir / "holds").glob("*.pending"))
    assert office.json("hold", "list", who="bob") == []
    named = _check(office)
    assert any("counts for nothing" in p and "hold.add by staff-sales" in p for p in named), named
    assert not any("holds/" in p for p in named), named  # nothing of it is in place to be named
    # With the command line: `hold add` as staff, its own permission check taken away.
    monkeypatch.setattr(Actor, "require", lambda self, action, **kw: None)
    res = office.run("hold", "add", office.b, "--reason", "litigation", who="staff-sales", ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stderr.startswith("vault: error: the history counts this hold.add for nothing"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 2 and "vault: hint: nothing it wrote was put in place" in res.stderr
    assert not (office.vault_dir / "holds" / f"{_id_of(office, office.b)}.toml").exists()
    assert office.json("hold", "list", who="bob") == []


@pytest.mark.parametrize("case", ["ten-years", "dated-ahead", "ends-first"])
def test_a_grant_lasts_no_longer_than_grant_allows(office, case):
    """[R-3.4.1] ``vault grant`` lets a consultation last 30 days at most. An archivist's grant
    written with the library to last ten years, dated five years after its history entry (its 30
    days starting then), or ending before it begins gives the grantee nothing: ``grant list``
    refuses it in one line and ``vault check`` names it."""
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    bob = _attacker(office, "bob")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    start, end = {"ten-years": (now, now + dt.timedelta(days=3650)),
                  "dated-ahead": (now + dt.timedelta(days=1826), now + dt.timedelta(days=1827)),
                  "ends-first": (now, now - dt.timedelta(hours=1))}[case]
    rec = bob.sign({"format": 1, "number": "G-000099", "request": req, "dossier": _id_of(office, office.a),
                    "target": office.a, "grantee": "staff-sales", "granted_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "expires_at": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "approval_sha256": "0" * 64})
    (office.vault_dir / "grants").mkdir(exist_ok=True)
    audit.commit(bob, "grant.create", {"grants/G-000099.toml": records.dump_toml(rec)}, number=office.a,
                 ref="G-000099", obj=req)
    res = office.run("grant", "list", who="bob", ok=False)
    _refused(res, "grants/G-000099.toml: dated")
    assert len(res.stderr.strip().splitlines()) == 2, res.stderr  # the error and its hint
    _assert_named(office, "grants/G-000099.toml: dated")


def test_a_grant_as_grant_writes_it_is_accepted(office):
    """The bound above is the command's own: a grant of the longest period ``vault grant`` allows
    lists as active and ``vault check`` finds nothing."""
    req = office.json("request", "access", office.a, "--purpose", "p", who="staff-sales")["number"]
    office.run("request", "approve", req, who="head-sales")
    gno = office.run("grant", req, "--hours", str(grants.MAX_GRANT_HOURS), who="bob").stdout.split()[0]
    rows = office.json("grant", "list", who="bob")
    assert [r["state"] for r in rows] == ["active"], (gno, rows)
    assert _check(office) == []
