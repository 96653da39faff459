"""Options that several commands share, each defined once: the same name, help text, default and checks everywhere."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: Why a request, denial, rejection or destruction is made; sealed in its record.
reason = click.option("--reason", required=True, help="Why (sealed).")
#: The dates people type are checked (not in the future, not before 1900) unless this says otherwise.
force_date = click.option("--force-date", is_flag=True, help="Accept a date in the future or before 1900.")
material_date = click.option("--date", required=True, help="Date of the material, YYYY-MM-DD.")
title = click.option("--title", help="Title (sealed).")
# Profile fields that a create and an update name alike.
address = click.option("--address", help="Address (sealed).")
legal_rep = click.option("--legal-rep", help="Legal representative (sealed).")
note = click.option("--note", help="Notes (sealed).")
#: A listing restricted to one department.
dept_filter = click.option("--dept", help="Only this department's dossiers.")


def paging(default_limit: int) -> Callable[[F], F]:
    """``--limit`` (rows per page, ``default_limit`` unless given) and ``--offset`` (rows skipped)."""
    limit = click.option("--limit", default=default_limit, show_default=True, help="Rows per page.")
    offset = click.option("--offset", default=0, help="Skip this many rows (the next page: --offset LIMIT).")
    return lambda f: limit(offset(f))


def valid_for(max_hours: int, default_hours: int, help: str) -> Callable[[F], F]:
    """``--valid-for HOURS``, between 1 and ``max_hours``. ``help`` is given as a keyword at each use,
    so that the message extractor finds it there."""
    return click.option("--valid-for", type=click.IntRange(1, max_hours), default=default_hours, show_default=True,
                        help=help)
