"""A record's own times as its command writes them: stamped as its entry was, lasting no longer than allowed."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from vault import clock
from vault.archive import committed
from vault.errors import IntegrityError
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.vault import Vault

#: How much earlier than its history entry a record may be stamped: a command stamps the record and
#: commits it under the same lock, seconds apart; a record dated further off was dated by hand.
STAMPED_BEFORE = dt.timedelta(hours=1)


def _time(text: str) -> dt.datetime | None:
    try:
        return clock.parse_stamp(text)
    except (TypeError, ValueError):
        return None


def stamped(v: Vault, rel: str, at: str) -> None:
    """``at`` (a record's stamp) at most ``STAMPED_BEFORE`` before the entry that wrote ``rel`` and
    never after it; otherwise an IntegrityError naming ``rel`` (a review dated years ahead would put
    its dossier's next review off by as much)."""
    if not committed.adopted(v, rel) and not _near_entry(v, rel, _time(at)):
        raise IntegrityError(N_("{rel}: dated {at}, which no command writes (its history entry is dated {entry_at})"),
                             hint=N_("its signer chose these times; 'vault check' names every such record"), rel=rel,
                             at=at, entry_at=committed.written_at(v, rel))


def _near_entry(v: Vault, rel: str, t0: dt.datetime | None) -> bool:
    return t0 is not None and near(t0, committed.written_at(v, rel))


def near(t0: dt.datetime, entry_at: str) -> bool:
    """Whether a record stamped ``t0`` was stamped as the entry dated ``entry_at`` was: at most
    ``STAMPED_BEFORE`` before it, never after it."""
    entry = _time(entry_at)
    return entry is not None and entry - STAMPED_BEFORE <= t0 <= entry


def check(v: Vault, rel: str, start: str, end: str, most: dt.timedelta) -> None:
    """``start`` stamped as ``stamped`` requires, and ``end`` (a stamp, or a date the office's
    calendar names) after it by at most ``most``. Otherwise an IntegrityError naming ``rel``: the
    member who signed it chose times no command writes (a grant for ten years, a loan due in a
    decade). A record ``vault migrate`` adopted keeps the times version 1 gave it (its entry is the
    migration's)."""
    if committed.adopted(v, rel):
        return
    t0 = _time(start)
    if end[10:11] == "T":
        t1 = _time(end)
        fits = t1 is not None and t0 is not None and t0 < t1 <= t0 + most
    else:
        try:
            due = dt.date.fromisoformat(end)
        except (TypeError, ValueError):
            due = None
        # A date in the office's zone, which lies within a day of the UTC date either way.
        day = dt.timedelta(days=1)
        fits = due is not None and t0 is not None and t0.date() - day <= due <= (t0 + most + day).date()
    if not fits or not _near_entry(v, rel, t0):
        raise IntegrityError(N_("{rel}: dated {start} to {end}, which no command writes (its history entry is dated "
                                "{at}; it lasts at most {days} days)"),
                             hint=N_("its signer chose these times; 'vault check' names every such record"), rel=rel,
                             start=start, end=end, at=committed.written_at(v, rel), days=most.days)
