"""Local time: the vault records UTC, people see and type dates in the office's time zone.

Calendar dates (a document's date, retention ends, reviews) are the office's: at 07:30 in Beijing it
is already that day there, whatever UTC says, and nothing shifts by a day at either midnight.
"""

from __future__ import annotations

import datetime as dt

import pytest

from office import SAM, fixed, make_office
from vault import clock
from vault.errors import InputError

UTC = dt.timezone.utc
SH = ("--tz", "Asia/Shanghai")


def _refused(res, *words):
    assert res.exit_code != 0
    assert res.stderr.startswith("vault: error: ") and "vault: hint: " in res.stderr, res.stderr
    assert "Traceback" not in res.output
    for w in words:
        assert w in res.stderr, res.stderr


pytestmark = pytest.mark.office(SAM, dossier={"name": "Hangzhou Biaoji"}, now="2026-12-06T12:00:00Z")


# -- the calendar day around both midnights ------------------------------------------------------------

@pytest.mark.parametrize("utc,beijing_day", [
    ("2026-12-06T15:30:00Z", "2026-12-06"),  # 23:30 in Beijing
    ("2026-12-06T16:30:00Z", "2026-12-07"),  # 00:30 in Beijing, still the 6th in UTC
    ("2026-12-06T23:30:00Z", "2026-12-07"),  # 07:30 in Beijing, before the UTC midnight
    ("2026-12-07T00:30:00Z", "2026-12-07"),  # 08:30 in Beijing, after it
])
def test_today_is_the_offices_calendar_day(utc, beijing_day):
    at = clock.Clock(fixed(utc))
    clock.use_zone(clock.zone("Asia/Shanghai"))
    assert at.today() == beijing_day
    clock.use_zone(UTC)
    assert at.today() == utc[:10]


def test_a_document_added_at_0730_in_beijing_is_dated_that_day(office, tmp_path):
    office.at("2026-12-06T23:30:00Z")  # 07:30 on 7 December in Beijing
    f = tmp_path / "a.txt"
    f.write_text("a")
    # In UTC it is still the 6th: the 7th is "in the future" there.
    _refused(office.run("doc", "add", office.number, str(f), "--category", "contract", "--source", "desk",
                        "--date", "2026-12-07", "--original", who="bob", ok=False), "in the future")
    out = office.json(*SH, "doc", "add", office.number, str(f), "--category", "contract", "--source", "desk",
                      "--date", "2026-12-07", "--original", who="bob")
    docs = office.json(*SH, "doc", "list", office.number, who="bob")
    assert [d["date"] for d in docs if d["number"] == out["number"]] == ["2026-12-07"]
    # A dossier created then is created on the 7th.
    number = office.json(*SH, "dossier", "create", "--type", "individual", "--business", "retail", "--dept",
                         "sales", "--name", "Li", who="bob")["number"]
    assert office.json("dossier", "show", number, who="bob")["created"] == "2026-12-07"


@pytest.mark.parametrize("utc,due", [
    ("2026-12-06T15:30:00Z", False),  # 23:30 on the 6th in Beijing: retention ends on the 7th
    ("2026-12-06T16:30:00Z", True),   # 00:30 on the 7th in Beijing
])
def test_retention_ends_on_the_offices_day(office, tmp_path, utc, due):
    f = tmp_path / "c.txt"
    f.write_text("contract")
    doc = office.add_doc(office.number, f, "bob", "contract", "--original", "--force-date")
    office.run("doc", "event", doc, "contract-fulfilled", "--date", "2016-12-07", who="bob")
    office.at(utc)
    rows = {r["number"]: r for r in office.json(*SH, "retention", "report", who="bob")}
    assert rows[doc]["until"] == "2026-12-07"  # a calendar date: ten years to the day, in any zone
    assert (rows[doc]["status"] == "due") is due
    # In UTC both instants are still the 6th: nothing is due yet.
    assert {r["number"]: r for r in office.json("--tz", "UTC", "retention", "report", who="bob")}[doc]["status"] == "kept"


def test_a_review_at_0730_in_beijing_is_dated_that_day(office):
    office.at("2026-12-06T23:30:00Z")
    office.run(*SH, "review", "done", office.number, "--needs-update", "--note", "address", who="bob")
    due = {r["number"]: r for r in office.json(*SH, "review", "due", who="bob")}
    assert due[office.number]["last_review"] == due[office.number]["needs_update_since"] == "2026-12-07"
    office.at("2026-12-07T00:30:00Z")  # 08:30 in Beijing, the UTC day has turned: same date
    due = {r["number"]: r for r in office.json(*SH, "review", "due", who="bob")}
    assert due[office.number]["last_review"] == "2026-12-07"


# -- showing and reading times ------------------------------------------------------------------------

def test_audit_log_shows_and_filters_in_the_offices_zone(office, tmp_path):
    office.at("2026-12-06T23:30:00Z")
    f = tmp_path / "b.txt"
    f.write_text("b")
    office.run(*SH, "doc", "add", office.number, str(f), "--category", "other", "--source", "desk",
               "--date", "2026-12-07", "--original", who="bob")
    text = office.run(*SH, "audit", "log", "--since", "2026-12-07", who="alice").stdout
    assert "2026-12-07 07:30:00 +08:00" in text and "doc.add" in text
    assert "2026-12-06 20:00:00 +08:00" not in text  # set-up entries, on the 6th in Beijing
    # The same day in UTC starts 8 hours later than in Beijing, and the entry is the 6th there.
    assert "doc.add" not in office.run("--tz", "UTC", "audit", "log", "--since", "2026-12-07", who="alice").stdout
    # --json keeps what is recorded: UTC.
    entries = office.json(*SH, "audit", "log", "--since", "2026-12-07", who="alice")
    assert entries and all(e["at"].endswith("Z") for e in entries)


def test_the_policys_zone_is_the_default_and_tz_overrides_it(tmp_path, monkeypatch):
    o = make_office(tmp_path, monkeypatch, now="2026-12-06T23:30:00Z")
    policy = o.run("policy", "show").stdout.split("\n", 1)[1]
    p = tmp_path / "policy.toml"
    p.write_text('time_zone = "Asia/Shanghai"\n' + policy, encoding="utf-8")
    o.run("policy", "update", str(p), who="alice")
    assert "2026-12-07 07:30:00 +08:00" in o.run("audit", "log", who="alice").stdout
    assert "2026-12-06 23:30:00 +00:00" in o.run("--tz", "UTC", "audit", "log", who="alice").stdout
    assert "2026-12-06 18:30:00 -05:00" in o.run("audit", "log", who="alice",
                                                 env={"VAULT_TZ": "America/New_York"}).stdout


def test_the_machines_zone_is_the_default_without_a_policy_zone(office, monkeypatch):
    office.at("2026-12-06T23:30:00Z")
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    assert clock.zone_name(clock.machine_zone()) == "Asia/Shanghai"
    monkeypatch.setenv("TZ", ":Asia/Tokyo")
    assert clock.zone_name(clock.machine_zone()) == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "/usr/share/zoneinfo/Europe/Paris")
    assert clock.zone_name(clock.machine_zone()) == "Europe/Paris"
    # A POSIX rule or a path is not a zone name: the system's zone is used instead, no error.
    for odd in ("CST-8", "/etc/passwd", "../../etc/shadow"):
        monkeypatch.setenv("TZ", odd)
        assert clock.machine_zone() is not None
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    assert "+08:00" in office.run("audit", "log", who="alice").stdout


@pytest.mark.parametrize("hostile", [
    "../../../../etc/passwd", "/etc/localtime", "Asia/../../etc/passwd", "Asia/Shanghai\n", "Asia",
    "Nowhere/Atlantis", "A" * 300, "-x", "Asia//Shanghai", "Asia/Shanghai\x00", "上海",
])
def test_a_hostile_time_zone_is_refused_cleanly(office, hostile):
    res = office.run("--tz", hostile, "audit", "log", who="alice", ok=False)
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert res.stderr.startswith("vault: error: ")
    with pytest.raises(InputError):
        clock.zone(hostile)


def test_a_policy_with_a_hostile_time_zone_is_refused(office, tmp_path):
    policy = office.run("policy", "show").stdout.split("\n", 1)[1]
    for bad in ("../../etc/passwd", "Nowhere/Atlantis"):
        p = tmp_path / "policy.toml"
        p.write_text(f'time_zone = "{bad}"\n' + policy, encoding="utf-8")
        res = office.run("policy", "update", str(p), who="alice", ok=False)
        _refused(res)
        assert "time_zone" in res.stderr or "time zone" in res.stderr
    assert "time_zone" not in office.json("policy", "show")


def test_init_refuses_an_unknown_zone(tmp_path, monkeypatch):
    o = make_office(tmp_path / "a", monkeypatch)
    _refused(o.run("init", str(tmp_path / "v"), "--supervisor", "x", "--key", o.keys["alice"], "--tz", "Mars/Base",
                   ok=False), "time zone")
    assert not (tmp_path / "v" / "vault.toml").exists()


def test_the_portal_shows_times_in_the_offices_zone():
    from vault import i18n

    t = dt.datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    clock.use_zone(clock.zone("Asia/Shanghai"))
    assert i18n.format_datetime(t, "zh_Hans", clock.current_zone()).startswith("2026年12月7日")
    assert "7:30" in i18n.format_datetime(t, "en", clock.current_zone())


def test_tz_after_the_command_says_where_it_goes(office):
    res = office.run("audit", "log", "--tz", "UTC", who="alice", ok=False)
    _refused(res, "--tz is a global option")


def test_a_time_zone_written_into_policy_toml_by_hand_is_not_used(office):
    """The zone decides which day "today" is: only the policy the history accepted sets it."""
    office.at("2026-12-06T23:30:00Z")
    path = office.vault_dir / "policy.toml"
    path.write_text('time_zone = "Asia/Shanghai"\n' + path.read_text(encoding="utf-8"), encoding="utf-8")
    text = office.run("audit", "log", who="alice").stdout
    assert "+00:00" in text and "+08:00" not in text


from hypothesis import example, given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=dt.date(1970, 1, 2), max_value=dt.date(2099, 12, 30)),
       st.sampled_from(["Asia/Shanghai", "America/Sao_Paulo", "America/Havana", "Pacific/Apia", "Europe/London",
                        "America/St_Johns", "Asia/Kathmandu", "UTC"]))
@example(dt.date(2018, 11, 4), "America/Sao_Paulo")  # clocks went from 00:00 straight to 01:00
def test_a_day_starts_on_that_day_in_every_zone(day, zone):
    """--since DATE: the UTC instant a local day begins is on that day locally, and the instant before
    it is not (zones whose midnight a DST change skips included)."""
    clock.use_zone(clock.zone(zone))
    try:
        start = clock.day_start(day.isoformat())
        assert clock.local_date(start) == day
        before = (dt.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ") - dt.timedelta(seconds=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        assert clock.local_date(before) < day
    finally:
        clock.use_zone(UTC)


def test_a_hostile_vault_tz_from_the_environment_is_refused_cleanly(office):
    res = office.run("audit", "log", who="alice", ok=False, env={"VAULT_TZ": "../../../etc/passwd"})
    _refused(res, "bad time zone")
