"""JSON read from bytes anyone may have written: every way it fails to parse is a ValueError."""

from __future__ import annotations

import json
from typing import Any


def loads(data: bytes | bytearray | str) -> Any:
    """``json.loads``; nesting deeper than the parser can follow (its ``RecursionError``) is a
    ``ValueError`` too, so a caller that names damage for bad JSON names this as well."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
