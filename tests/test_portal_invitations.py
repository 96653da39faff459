"""Invitations to the online platform [R-3.1.2]: who may issue them, what the record keeps, what a forged one opens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import tomllib

import pytest

from office import MARKERS, PASSPHRASE
from portal_helpers import PORTAL_CAST, PORTAL_DOSSIER
from vault.store import identity, records
from vault.crypto import age
from vault.archive.manifests import resolve
from vault.errors import IntegrityError, NoIdentityMatchError, NotFoundError
from vault.office import invitations
from vault.archive import invitations as invitations_
from vault.archive.vault import Vault

BASE = "https://portal.example.com"


pytestmark = pytest.mark.office(*PORTAL_CAST, dossier=PORTAL_DOSSIER)


@pytest.fixture
def office(office):
    o = office
    o.other = o.create(name="Other Customer", dept="legal")
    return o


def _invite(o, number=None, *extra, who="bob", ok=True):
    return o.run("intake", "invite", number or o.number, "--base-url", BASE, *extra, "--json", who=who, ok=ok)


def _record(o, iid: str) -> dict:
    return tomllib.loads((o.vault_dir / "intake" / "invitations" / f"{iid}.toml").read_text())


def test_the_record_keeps_only_the_token_hash_and_seals_the_note_to_it(office):
    import json

    out = json.loads(_invite(office, None, "--note", MARKERS["title"], "--uses", "3", "--expires", "36h").stdout)
    token = invitations.token_bytes(out["link"].rsplit("/", 1)[1])
    assert out["link"].startswith(f"{BASE}/i/{out['id']}/") and token is not None
    rec = _record(office, out["id"])
    assert rec["token_sha256"] == hashlib.sha256(token).hexdigest()
    assert out["link"].rsplit("/", 1)[1] not in str(rec) and MARKERS["title"] not in str(rec)
    assert rec["dossier"] == resolve(Vault.open(office.vault_dir), office.number)  # the permanent id
    assert rec["uses"] == 3 and rec["by"] == "bob" and rec["signature"]["by"] == "bob"
    # Only the token opens the note: not the archive (bob's keys), not the intake key.
    assert invitations.open_note(rec, token) == MARKERS["title"]
    bob = identity.load_identity(office.ident("bob"), PASSPHRASE)
    with pytest.raises(NoIdentityMatchError):
        age.decrypt_bytes(base64.b64decode(rec["note"]), [bob.age_identity()])
    entries = [e for e in office.json("audit", "log", who="alice") if e["action"] == "intake.invite"]
    assert entries and entries[-1]["ref"] == out["id"] and entries[-1]["number"] == office.number


def test_a_liaison_invites_for_their_own_department_only(office):
    assert _invite(office, None, who="lena").exit_code == 0  # sales liaison, sales dossier
    res = _invite(office, office.other, who="lena", ok=False)
    assert res.exit_code == 1 and "belongs to department legal" in res.stderr
    res = _invite(office, None, who="sam", ok=False)  # staff may not invite at all
    assert res.exit_code == 1 and "may not intake.invite" in res.stderr
    assert _invite(office, office.other, who="bob").exit_code == 0  # the archive invites for any department


def test_bad_arguments_are_one_line_each(office):
    for extra, words in ((["--expires", "91d"], "at most 90 days"), (["--expires", "soon"], "bad duration"),
                         (["--uses", "0"], "--uses must be"), (["--note", "x" * 3000], "longer than")):
        res = _invite(office, None, *extra, ok=False)
        assert res.exit_code == 1 and words in res.stderr and "Traceback" not in res.output
    res = office.run("intake", "invite", office.number, who="bob", ok=False, env={"VAULT_PORTAL_URL": ""})
    assert res.exit_code == 1 and "vault: hint:" in res.stderr
    res = _invite(office, "E-1999-999999", ok=False)
    assert res.exit_code == 1 and "no dossier" in res.stderr


def test_an_invitation_signed_by_someone_who_may_not_invite_opens_nothing(office):
    """Staff with write access to the directory forge an invitation with their own valid signature."""
    import json

    out = json.loads(_invite(office).stdout)
    rec = _record(office, out["id"])
    sam = identity.load_identity(office.ident("sam"), PASSPHRASE)
    forged = records.sign_record(dict(rec, by="sam"), signer="sam", key=sam)
    records.write_toml(office.vault_dir / "intake" / "invitations" / f"{out['id']}.toml", forged)
    # The history issued the invitation as bob wrote it: a re-signed file is not that record.
    with pytest.raises(IntegrityError, match="does not match history"):
        invitations_.load(Vault.open(office.vault_dir), out["id"])
    # A liaison's signature on an invitation for another department's dossier is refused the same way.
    lena = identity.load_identity(office.ident("lena"), PASSPHRASE)
    other = json.loads(_invite(office, office.other).stdout)
    rec = _record(office, other["id"])
    records.write_toml(office.vault_dir / "intake" / "invitations" / f"{other['id']}.toml",
                       records.sign_record(dict(rec, by="lena"), signer="lena", key=lena))
    with pytest.raises(IntegrityError, match="does not match history"):
        invitations_.load(Vault.open(office.vault_dir), other["id"])
    # Edited fields break the signature.
    third = json.loads(_invite(office).stdout)
    path = office.vault_dir / "intake" / "invitations" / f"{third['id']}.toml"
    path.write_text(path.read_text().replace("uses = 1", "uses = 100"))
    with pytest.raises(IntegrityError):
        invitations_.load(Vault.open(office.vault_dir), third["id"])


def test_ids_from_the_web_never_reach_a_path(office):
    v = Vault.open(office.vault_dir)
    for bad in ("../../vault", "0" * 31, "G" * 32, "0" * 32 + "/", "", None):
        with pytest.raises(NotFoundError):
            invitations_.load(v, bad)
    for bad in ("", "A" * 42, "A" * 44, "A" * 42 + "=", "../" * 14 + "a", "A" * 42 + "B", None):
        assert invitations.token_bytes(bad) is None or len(invitations.token_bytes(bad)) == 32


def test_tokens_are_compared_in_constant_time(office, monkeypatch):
    """The presented token's hash is compared with hmac.compare_digest, whatever it is."""
    import json

    out = json.loads(_invite(office).stdout)
    rec = invitations_.load(Vault.open(office.vault_dir), out["id"])
    token = invitations.token_bytes(out["link"].rsplit("/", 1)[1])
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(invitations.hmac, "compare_digest", spy)
    assert invitations.token_matches(rec, token)
    assert not invitations.token_matches(rec, bytes(32))
    assert not invitations.token_matches(rec, None)  # a malformed token costs the same comparison
    assert len(calls) == 3 and all(len(a) == len(b) == 32 for a, b in calls)
    assert calls[0][0] == hashlib.sha256(token).digest()


def test_a_submission_filed_under_another_dossier_than_its_invitation_is_refused(office, tmp_path):
    import json

    out = json.loads(_invite(office).stdout)
    f = tmp_path / "x.txt"
    f.write_text("x")
    sid = office.json("intake", "submit", str(f), "--for", office.other, "--category", "other",
                      "--source", "s", "--date", "2026-01-01")["ids"][0]
    p = office.vault_dir / "intake" / f"{sid}.toml"
    p.write_text(p.read_text() + f'invitation = "{out["id"]}"\n')
    res = office.run("intake", "accept", sid, who="bob", ok=False)
    assert res.exit_code == 1 and "its invitation names" in res.stderr


def test_an_invitation_signed_to_last_longer_than_invite_allows_opens_nothing(office, monkeypatch):
    """[R-3.1.2] ``intake invite`` lets an invitation last 90 days at most. An archivist's library
    call that skips that bound (a link valid for a year) writes a record that opens nothing: the
    portal's reading of it refuses it, ``intake invitations`` refuses it in one line and ``vault
    check`` names it."""
    import datetime as dt
    import json

    ok = json.loads(_invite(office, None, "--expires", "90d").stdout)  # the longest the command allows counts
    assert [r["id"] for r in office.json("intake", "invitations", who="bob")] == [ok["id"]]
    monkeypatch.setattr(invitations, "parse_duration", lambda text: dt.timedelta(days=365))
    out = invitations.issue(office.actor("bob"), office.number)
    rel = f"intake/invitations/{out['id']}.toml"
    with pytest.raises(IntegrityError, match=f"{rel}: dated"):
        invitations_.load(Vault.open(office.vault_dir), out["id"])
    res = office.run("intake", "invitations", who="bob", ok=False)
    assert res.exit_code == 1 and f"{rel}: dated" in res.stderr and "Traceback" not in res.output, res.output
    assert len(res.stderr.strip().splitlines()) == 2, res.stderr
    problems = json.loads(office.run("check", "--json", who="bob", ok=False).stdout)["problems"]
    assert any(p.startswith(f"{rel}: dated") for p in problems), problems


def test_invitations_list_shows_state_and_uses(office):
    import json

    out = json.loads(_invite(office, None, "--uses", "2").stdout)
    rows = office.json("intake", "invitations", who="bob")
    assert [(r["id"], r["state"], r["used"], r["uses"]) for r in rows] == [(out["id"], "open", 0, 2)]
    res = office.run("intake", "invitations", who="lena", ok=False)
    assert res.exit_code == 1 and "may not intake.manage" in res.stderr


def test_portal_serve_refuses_bad_settings_in_one_line(office):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, words in ((["--listen", "nonsense"], "bad listen address"),
                            (["--listen", "127.0.0.1:99999"], "bad listen address"),
                            (["--rate-limit", "0/60"], "bad --rate-limit"),
                            (["--min-upload-rate", "100/0"], "bad --min-upload-rate"),
                            (["--min-upload-rate", "fast"], "bad --min-upload-rate"),
                            (["--listen", f"127.0.0.1:{port}"], "cannot listen on")):
            res = office.run("portal", "serve", "--organisation", "X", *args, ok=False)
            assert res.exit_code == 1 and words in res.stderr and "vault: hint:" in res.stderr, res.output


def test_the_rate_limiter_forgets_old_hits_and_stays_bounded():
    from vault.portal.guard import RateLimiter

    now = [0.0]
    rl = RateLimiter(3, 10, max_keys=100, clock=lambda: now[0])
    assert [rl.allow("a") for _ in range(4)] == [True, True, True, False]
    assert rl.allow("b")  # per key
    now[0] = 10.5
    assert rl.allow("a")  # the window slid
    for i in range(1000):  # a flood of distinct keys does not grow it without bound
        rl.allow(f"k{i}")
    assert len(rl._hits) <= 100
