"""The names of backup objects, as the engine makes them and every built-in target checks them."""

from __future__ import annotations

import re

from vault.i18n import Message, N_

# Object names are what the backup engine chooses; a name that could climb out of the target's root
# (``..``), hide as a temporary, carry a control character or an empty part (``a//b``, ``x/``: a
# path the file target cannot walk, a key the engine never makes) is refused before it reaches a
# path or key.
_NAME = re.compile(r"[!-.0-~]+(/[!-.0-~]+)*\Z")
TMP = ".tmp-"  # a temporary: never an object


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid object name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(Message(N_("bad object name {name!r}"), name=name))
    if any(part in (".", "..") or part.startswith(TMP) for part in name.split("/")):
        raise ValueError(Message(N_("bad object name {name!r}"), name=name))
    return name
