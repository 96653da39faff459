"""Reading TOML: tomli, the standard library's ``tomllib`` as published, compiled where a wheel is.

The same parser (``tomllib`` is a vendored tomli), about three times faster where the compiled wheel
is installed: ``vault check`` parses every manifest of the vault, so this is most of its time.
"""

from tomli import TOMLDecodeError, loads

__all__ = ["TOMLDecodeError", "loads"]
