"""CSV that spreadsheets open as text: UTF-8 with a byte-order mark, formula-looking cells defused."""

from __future__ import annotations

from typing import Any

#: Leads a CSV file unless a caller asks otherwise: without it, a spreadsheet on a Chinese Windows
#: desktop reads the UTF-8 as the local code page and shows mojibake.
BOM = "\ufeff"

# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """One CSV cell: ``true``/``false`` for booleans, empty for none, a list joined with ``; ``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(x) for x in value)
    text = "" if value is None else str(value)
    # A leading quote makes the spreadsheet show the text instead of evaluating it (OWASP's advice).
    return "'" + text if text.startswith(FORMULA_STARTS) else text
