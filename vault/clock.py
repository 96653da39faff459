"""The vault's clock: one seam so tests can move time; production code never takes a time from users."""

from __future__ import annotations

import datetime as _dt

_override: _dt.datetime | None = None


def now() -> _dt.datetime:
    """Current time, UTC, to the second."""
    t = _override or _dt.datetime.now(_dt.timezone.utc)
    return t.replace(microsecond=0)


def stamp() -> str:
    """Current time as an RFC 3339 UTC string (``2026-11-27T13:49:12Z``)."""
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> str:
    """Current date as ``YYYY-MM-DD``."""
    return now().date().isoformat()
