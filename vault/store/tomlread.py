"""Reading TOML: tomli, the standard library's ``tomllib`` as published, compiled where a wheel is.

The same parser (``tomllib`` is a vendored tomli), about three times faster where the compiled wheel
is installed: ``vault check`` parses every manifest of the vault, so this is most of its time.
"""

from typing import Any

from tomli import TOMLDecodeError
from tomli import loads as _loads

__all__ = ["TOMLDecodeError", "loads"]


def loads(text: str) -> dict[str, Any]:
    """``tomli.loads``; nesting deeper than it follows (its ``RecursionError``: a file anyone may have
    written) is a ``TOMLDecodeError`` too, so the damage is named like any other."""
    try:
        return _loads(text)
    except RecursionError:
        raise TOMLDecodeError("arrays or tables nested too deeply", text, 0) from None
