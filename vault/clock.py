"""The vault's clock: procedures take the time from the ``Clock`` of the vault handle they are given.

The command line opens the vault with the machine's clock, or with the one a program that runs it
in-process passes as its context object (``cli.main(args, obj=Clock(at))``: nothing a user types or
sets reaches it); a library caller may pass a fixed one (``Vault.open(root, clock=Clock(at))``).
There is no process-wide time to patch. Production code never takes a time from users.

The vault records UTC. People live in the office's time zone: ``today()`` is the calendar date there
(a document added at 07:30 in Beijing is dated that day, not the UTC day before), and the command
line shows times there. The zone in force is set once per command (``use_zone``) from ``--tz``, the
policy's ``time_zone``, or the machine's; a library caller that sets none gets UTC.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

from vault.errors import InputError
from vault.i18n import N_

_zone: _dt.tzinfo = _dt.timezone.utc

#: An IANA zone key as the vault accepts it: named parts of letters, digits, ``_``, ``+``, ``-``; no
#: path (``/etc/passwd``, ``../x``), no empty part, at most 64 characters.
ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,3}\Z")
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})Z\Z")
#: A time as the vault records it (``2026-11-27T13:49:12Z``): of fixed width, so that two compare as text.
STAMP = _STAMP


class Clock:
    """The time a vault handle's procedures run at: they read it here, from the clock the caller
    gave ``Vault.open`` (the command line gives the machine's), never from the machine directly.

    ``Clock(at)`` is fixed at ``at`` (a library caller's "as of", a test) until ``set``; ``Clock()``
    is the machine's. Dates are in the office's zone (``use_zone``).
    """

    def __init__(self, at: _dt.datetime | None = None) -> None:
        self._at = at

    def set(self, at: _dt.datetime | None) -> None:
        """Fix this clock at ``at`` (None: the machine's time again)."""
        self._at = at

    def now(self) -> _dt.datetime:
        """The time, UTC, to the second."""
        t = self._at or _dt.datetime.now(_dt.timezone.utc)
        return t.replace(microsecond=0)

    def stamp(self) -> str:
        """The time as an RFC 3339 UTC string (``2026-11-27T13:49:12Z``)."""
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def today(self) -> str:
        """The date in the office's time zone, as ``YYYY-MM-DD``."""
        return self.today_date().isoformat()

    def today_date(self) -> _dt.date:
        """``today()`` as a date."""
        return self.now().astimezone(_zone).date()


#: The machine's clock, for what runs without a vault handle (the command line's own output).
SYSTEM = Clock()


def now() -> _dt.datetime:
    """Current time, UTC, to the second (the machine's clock)."""
    return SYSTEM.now()


def stamp() -> str:
    """Current time as an RFC 3339 UTC string (``2026-11-27T13:49:12Z``)."""
    return SYSTEM.stamp()


def today() -> str:
    """Current date in the office's time zone, as ``YYYY-MM-DD``."""
    return SYSTEM.today()


def zone(key: str) -> _dt.tzinfo:
    """The time zone named ``key`` (``Asia/Shanghai``, ``UTC``); an InputError for anything else —
    a path, a name the time zone database does not have, a damaged zone file."""
    if not isinstance(key, str) or len(key) > 64 or not ZONE_KEY.match(key) or key.startswith("-"):
        raise InputError(N_("bad time zone {key!r}"), hint=N_("use an IANA time zone name such as Asia/Shanghai or UTC"),
                         key=key[:80] if isinstance(key, str) else "")
    import zoneinfo  # here: its import reads the build's sysconfig, and most commands need no zone

    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(N_("unknown time zone {key!r}"),
                         hint=N_("use an IANA time zone name such as Asia/Shanghai; the machine needs the "
                                 "time zone database (Debian package tzdata)"), key=key) from None


def machine_zone() -> _dt.tzinfo:
    """The machine's time zone: ``TZ`` when it names a zone, else ``/etc/localtime``, else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if "/zoneinfo/" in tz:  # TZ=/usr/share/zoneinfo/Asia/Shanghai names the zone by its file
        tz = tz.split("/zoneinfo/", 1)[1]
    if tz:
        try:
            return zone(tz)
        except InputError:
            pass  # a POSIX rule such as CST-8, or a path: fall back to the system's zone
    local = Path("/etc/localtime")
    try:
        target = str(local.resolve())
        if "/zoneinfo/" in target:
            return zone(target.split("/zoneinfo/", 1)[1])
        import zoneinfo

        with local.open("rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError, InputError):
        return _dt.timezone.utc


def use_zone(tz: _dt.tzinfo) -> None:
    """Make ``tz`` the zone of ``today()`` and of ``local()`` for this process."""
    global _zone
    _zone = tz


def current_zone() -> _dt.tzinfo:
    return _zone


def zone_name(tz: _dt.tzinfo | None = None) -> str:
    tz = tz or _zone
    return getattr(tz, "key", None) or str(tz)


def local(stamp_text: str) -> str:
    """An RFC 3339 UTC stamp shown in the office's zone (``2026-12-06 07:30:00 +08:00``); any other
    text is returned as it is."""
    m = _STAMP.match(stamp_text) if isinstance(stamp_text, str) else None
    if not m:
        return stamp_text
    try:
        t = _dt.datetime.fromisoformat(f"{m[1]}T{m[2]}+00:00").astimezone(_zone)
    except ValueError:
        return stamp_text
    off = t.strftime("%z")
    return f"{t:%Y-%m-%d %H:%M:%S} {off[:3]}:{off[3:]}"


def day_start(date_text: str) -> str:
    """The UTC stamp at which the calendar day ``date_text`` begins in the office's zone (what
    ``--since DATE`` compares recorded UTC times with)."""
    d = _dt.date.fromisoformat(date_text)
    t = _dt.datetime.combine(d, _dt.time(0), tzinfo=_zone).astimezone(_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def today_date() -> _dt.date:
    """``today()`` as a date."""
    return SYSTEM.today_date()


def parse_stamp(stamp_text: str) -> _dt.datetime:
    """A recorded time (``STAMP``) as an aware UTC datetime; ValueError for anything else."""
    return _dt.datetime.strptime(stamp_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)


def local_date(stamp_text: str) -> _dt.date:
    """The calendar date, in the office's zone, of an RFC 3339 UTC stamp."""
    return parse_stamp(stamp_text).astimezone(_zone).date()
