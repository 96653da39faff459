"""Removing a member rotates the intake identity [issue 14 property 6], played as the leaver.

The leaver, an archivist, copies the intake identity while a member (as any ring member can); after
their removal nothing pending nor submitted later opens with it or with their own key, while the
remaining archivists accept both.
"""

from __future__ import annotations

import base64
import json
import tomllib

import pytest

from office import MARKERS, PASSPHRASE
from vault.archive.vault import Vault
from vault.crypto import age
from vault.errors import NoIdentityMatchError
from vault.office import intake
from vault.store import identity


pytestmark = pytest.mark.office(("dave", "archivist", "archive"), dossier={"name": "Rotation Customer Ltd"})


def _submit(o, tmp_path, name: str) -> str:
    f = tmp_path / name
    f.write_text(MARKERS["content"] + name)
    res = o.json("intake", "submit", str(f), "--for", o.number, "--category", "contract", "--source", MARKERS["source"],
                 "--date", "2026-01-02")
    return res["ids"][0] if "ids" in res else res[0]


def _stolen_intake_identities(o) -> list[age.Identity]:
    """What dave, a member, can take home: every identity in the intake key file."""
    me = Vault.open(o.vault_dir).act_as(identity.load_identity(o.ident("dave"), PASSPHRASE))
    plain = age.decrypt_bytes((o.vault_dir / "keys" / "_intake.age").read_bytes(), me.read_identities()).decode()
    return [age.parse_identity(line) for line in plain.split()]


def _opens_nothing(o, idents: list[age.Identity]) -> int:
    tried = 0
    for p in (o.vault_dir / "intake").glob("*.age"):
        tried += 1
        with pytest.raises(NoIdentityMatchError):
            age.decrypt_bytes(p.read_bytes(), idents)
    for p in (o.vault_dir / "intake").glob("*.toml"):
        if ".rejected" in p.name:
            continue
        rec = tomllib.loads(p.read_text())
        with pytest.raises(NoIdentityMatchError):
            age.decrypt_bytes(base64.b64decode(rec["sealed"]), idents)
    with pytest.raises(NoIdentityMatchError):
        age.decrypt_bytes((o.vault_dir / "keys" / "_intake.age").read_bytes(), idents)
    return tried


def test_removal_rotates_the_intake_identity(office, tmp_path):
    old_rcpt = office.run("intake", "key").stdout.strip()
    before = _submit(office, tmp_path, "before.txt")
    stolen = _stolen_intake_identities(office)
    assert age.decrypt_bytes((office.vault_dir / "intake" / f"{before}.age").read_bytes(), stolen)  # it did open
    office.run("member", "remove", "dave", who="alice")

    new_rcpt = office.run("intake", "key").stdout.strip()
    assert new_rcpt != old_rcpt and new_rcpt.startswith("age1")
    assert intake.recipient(Vault.open(office.vault_dir)) == new_rcpt  # what the portal encrypts to
    after = _submit(office, tmp_path, "after.txt")
    # The portal's streamed submissions go to the new key as well.
    sub = intake.StreamedSubmission(Vault.open(office.vault_dir))
    sub.write(MARKERS["content"].encode())
    sub.finish()
    portal = sub.commit(number=office.number, category="contract", date="2026-01-02", original=False,
                        meta={"title": "t", "source": "portal", "filename": "p.txt"})

    own = identity.load_identity(office.ident("dave"), PASSPHRASE).age_identity()
    assert _opens_nothing(office, [*stolen, own]) == 3
    for p in office.vault_dir.rglob("*"):  # and nothing of theirs is in clear on disk
        assert not p.is_file() or not any(m.encode() in p.read_bytes() for m in MARKERS.values()), p

    # The remaining archivist accepts all three, and reads them.
    for sid in (before, after, portal):
        docno = office.json("intake", "accept", sid, who="bob")["number"]
        out = office.run("doc", "view", docno, "--output", str(tmp_path / f"{sid}.out"), who="bob")
        assert MARKERS["content"] in (tmp_path / f"{sid}.out").read_text(), out.output
    assert json.loads(office.run("check", "--json").stdout)["ok"]


@pytest.mark.usefixtures("unjudged")
def test_the_intake_key_named_by_a_non_supervisor_counts_for_nothing(office, tmp_path):
    """Only a removal by a supervisor (a root entry) changes the intake key; vault.toml is the genesis."""
    from vault.archive import audit, authority

    v = Vault.open(office.vault_dir)
    bob = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    rogue = age.recipient_of(age.generate_identity("mlkem768x25519"))
    with v.lock(exclusive=True):
        audit.commit(bob, "member.remove", {}, ref="dave", obj="dave", subject={"intake_recipient": rogue})
    v = Vault.open(office.vault_dir)
    assert intake.recipient(v) != rogue
    assert authority.state(v)["members"]["dave"]["status"] == "active"
    assert any("not a supervisor" in p for p in json.loads(office.run("check", "--json", ok=False).stdout)["problems"])


def test_a_removal_interrupted_while_re_wrapping_loses_no_submission(office, tmp_path, monkeypatch):
    """Killed between a submission's new record and the rename of its new file: the next accept
    finishes the re-wrap by the record's hash, and the removal, run again, completes."""
    import os

    from vault.archive import intakekey

    sid = _submit(office, tmp_path, "pending.txt")
    real = os.replace

    def crash(src, dst, *a, **k):
        if str(src).endswith(intakekey.REWRAP):
            raise Killed  # the process dies here
        return real(src, dst, *a, **k)

    class Killed(BaseException):
        pass

    from vault.office import membership

    alice = Vault.open(office.vault_dir).act_as(identity.load_identity(office.ident("alice"), PASSPHRASE))
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Killed):
        membership.remove_member(alice, "dave")
    monkeypatch.setattr(os, "replace", real)
    assert (office.vault_dir / "intake" / f"{sid}{intakekey.REWRAP}").exists()
    v = Vault.open(office.vault_dir)
    from vault.archive import authority

    assert authority.state(v)["members"]["dave"]["status"] == "active"  # no entry: nothing happened
    office.run("member", "remove", "dave", who="alice")
    assert not (office.vault_dir / "intake" / f"{sid}{intakekey.REWRAP}").exists()
    docno = office.json("intake", "accept", sid, who="bob")["number"]
    office.run("doc", "view", docno, "--output", str(tmp_path / "out"), who="bob")
    assert MARKERS["content"] in (tmp_path / "out").read_text()


def test_a_removal_interrupted_at_its_commit_point_loses_no_submission(office, tmp_path):
    """Killed before the entry: the history still names the old key and everything pending opens
    with it; run again, the removal completes and the leaver opens nothing."""
    from vault.office import membership

    class Killed(BaseException):
        pass

    sid = _submit(office, tmp_path, "pending.txt")
    old_rcpt = office.run("intake", "key").stdout.strip()
    alice = Vault.open(office.vault_dir).act_as(identity.load_identity(office.ident("alice"), PASSPHRASE))

    def die(*a, **kw):
        raise Killed

    alice.commit = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        membership.remove_member(alice, "dave")
    assert office.run("intake", "key").stdout.strip() == old_rcpt  # no entry: the old key stands
    stolen = _stolen_intake_identities(office)
    office.run("member", "remove", "dave", who="alice")
    own = identity.load_identity(office.ident("dave"), PASSPHRASE).age_identity()
    assert _opens_nothing(office, [*stolen, own]) == 1
    docno = office.json("intake", "accept", sid, who="bob")["number"]
    office.run("doc", "view", docno, "--output", str(tmp_path / "out"), who="bob")
    assert MARKERS["content"] in (tmp_path / "out").read_text()


def test_an_upload_under_way_during_a_removal_goes_to_the_new_key_at_the_next_accept(office, tmp_path):
    """A portal upload encrypting to the old key when the member is removed lands after it; the
    next 'intake accept' re-wraps it to the new key, so the leaver's copy of the old one opens nothing."""
    stolen = _stolen_intake_identities(office)
    first = _submit(office, tmp_path, "first.txt")
    sub = intake.StreamedSubmission(Vault.open(office.vault_dir))  # the old key, read at the start
    sub.write(MARKERS["content"].encode())
    office.run("member", "remove", "dave", who="alice")
    sub.finish()
    late = sub.commit(number=office.number, category="contract", date="2026-01-02", original=False,
                      meta={"title": "t", "source": "portal", "filename": "late.txt"})
    assert age.decrypt_bytes((office.vault_dir / "intake" / f"{late}.age").read_bytes(), stolen)  # the window
    # Someone changes another pending submission behind its record: it is left for accept to refuse.
    third = _submit(office, tmp_path, "third.txt")
    p = office.vault_dir / "intake" / f"{third}.age"
    p.write_bytes(p.read_bytes() + b"x")
    office.json("intake", "accept", first, who="bob")
    own = identity.load_identity(office.ident("dave"), PASSPHRASE).age_identity()
    with pytest.raises(NoIdentityMatchError):
        age.decrypt_bytes((office.vault_dir / "intake" / f"{late}.age").read_bytes(), [*stolen, own])
    docno = office.json("intake", "accept", late, who="bob")["number"]
    office.run("doc", "view", docno, "--output", str(tmp_path / "late.out"), who="bob")
    assert MARKERS["content"] in (tmp_path / "late.out").read_text()
    res = office.run("intake", "accept", third, who="bob", ok=False)
    assert res.exit_code != 0 and "does not match its record" in res.stderr
