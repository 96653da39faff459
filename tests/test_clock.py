"""Procedures take the time from the clock of the vault handle they are given (``Vault.open(root, clock=…)``),
never from a patched global: two handles on one vault at two times see two different days."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner
from office import PASSPHRASE, make_office

from vault.archive import invitations as recorded
from vault.archive import manifests, reviews
from vault.archive.vault import Vault
from vault.cli import cli
from vault.clock import Clock
from vault.office import invitations, review
from vault.store import identity

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _as(o, name: str, at: dt.datetime):
    v = Vault.open(o.vault_dir, clock=Clock(at))
    return v, v.act_as(identity.load_identity(o.ident(name), PASSPHRASE))


def test_a_record_carries_the_time_of_its_handles_clock(tmp_path, monkeypatch):
    o = make_office(tmp_path, monkeypatch)
    number = o.create(name="Clock Customer")
    earlier = NOW - dt.timedelta(days=3, minutes=7)
    v, bob = _as(o, "bob", earlier)
    assert review.done(bob, number, "verified")["at"] == earlier.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The signed record the history committed says so too, read through a handle at another time.
    later = Vault.open(o.vault_dir)
    assert reviews.history(later, manifests.resolve(later, number))[-1]["at"] == earlier.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_invitation_expires_on_the_clock_of_the_handle_that_reads_it(tmp_path, monkeypatch):
    """[R-3.1.2] An invitation is open until its expiry and closed after it, as of the time each handle is given."""
    o = make_office(tmp_path, monkeypatch)
    number = o.create(name="Clock Customer")
    _, bob = _as(o, "bob", NOW)
    iid = invitations.issue(bob, number, expires="7d")["id"]
    for at, want in ((NOW, "open"), (NOW + dt.timedelta(days=6, hours=23), "open"),
                     (NOW + dt.timedelta(days=7), "expired"), (NOW + dt.timedelta(days=30), "expired")):
        v = Vault.open(o.vault_dir, clock=Clock(at))
        assert invitations.state(v, recorded.load(v, iid)) == want, at


def test_a_fixed_clock_can_be_moved_and_today_is_in_the_offices_zone():
    c = Clock(dt.datetime(2026, 12, 5, 23, 30, 15, 999, tzinfo=dt.timezone.utc))
    assert c.stamp() == "2026-12-05T23:30:15Z"
    assert c.today() == "2026-12-05"
    c.set(dt.datetime(2026, 12, 6, 0, 0, 1, tzinfo=dt.timezone.utc))
    assert c.today_date() == dt.date(2026, 12, 6)


def test_the_command_line_runs_at_the_clock_its_caller_gives(tmp_path, monkeypatch):
    """The command line supplies the time: the machine's, or a clock passed as its context object by the
    program that invokes it — no global is patched, and the next command runs at the machine's time again."""
    o = make_office(tmp_path, monkeypatch)
    number = o.create(name="Clock Customer")
    at = NOW - dt.timedelta(days=40, hours=5)
    env = {"VAULT_DIR": str(o.vault_dir), "VAULT_PASSPHRASE_FILE": str(o.root / "pass"),
           "VAULT_AGENT_SOCK": str(o.root / "no-agent.sock"), "VAULT_IDENTITY": str(o.ident("bob"))}
    res = CliRunner().invoke(cli, ["review", "done", number, "--verified", "--json"], env=env, obj=Clock(at),
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = o.json("audit", "log", who="alice")
    assert [e["at"] for e in entries if e["action"] == "review.record"] == [at.strftime("%Y-%m-%dT%H:%M:%SZ")]
    # The 'audit log' just run recorded its read at the machine's time.
    read = [e for e in o.json("audit", "log", who="alice") if e["action"] == "audit.read"]
    assert read and read[0]["at"] >= NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_check_notes_an_entry_dated_behind_the_history_or_ahead_of_its_own_clock(tmp_path, monkeypatch):
    """There is no trusted clock, but ``vault check`` notes what clocks give away: an entry dated more
    than an hour before an earlier one (its signer's clock behind, or set back), and a latest entry
    dated more than an hour after the checking machine's clock (a signer's clock set ahead — to make
    a grant start and end years from now, say). Notes, not problems: clocks differ."""
    o = make_office(tmp_path, monkeypatch)
    number = o.create(name="Clock Customer")
    now = o.clock.now()
    assert not [n for n in o.json("check", who="bob")["notes"] if "dated" in n]
    _, bob = _as(o, "bob", now - dt.timedelta(minutes=50))  # within the slack: no note
    review.done(bob, number, "verified")
    assert not [n for n in o.json("check", who="bob")["notes"] if "dated" in n]
    _, bob = _as(o, "bob", now - dt.timedelta(days=2))
    review.done(bob, number, "verified")
    notes = o.json("check", who="bob")["notes"]
    assert any("(review.record by bob): dated" in n and "before the entry before it" in n for n in notes), notes
    ahead = now + dt.timedelta(days=365)
    _, bob = _as(o, "bob", ahead)
    review.done(bob, number, "verified")
    rep = o.json("check", who="bob")
    assert any(f"the latest entry is dated {ahead:%Y-%m-%dT%H:%M:%SZ}, after this machine's clock" in n
               for n in rep["notes"]), rep["notes"]
    assert rep["ok"], rep["problems"]
    # The office goes on at the right time: the entry after the one dated ahead is one note, the
    # rest none; a client that resumes from its checkpoint still shows every note (the state keeps them).
    for _ in range(3):
        o.create(name="Later Customer")
    notes = [n for n in o.json("check", who="bob")["notes"] if "dated" in n]
    assert sum("before the entry before it" in n for n in notes) == 2, notes
    assert sum("after this machine's clock" in n for n in notes) == 1, notes
