"""One validating function per kind of id: what a user types or a file names is checked before use.

Ids become file names (``requests/<R>.toml``, ``dossiers/<id>/``, ``intake/<id>.age``); an id that
is not exactly its kind's form (``../x``, an absolute path, a newline) is refused here, so no caller
joins unchecked text into a path. Ids typed by a user are refused with an InputError; ids read from
a file (``from_file=True``) mean the file is damaged or forged, an IntegrityError naming it.
"""

from __future__ import annotations

import re

from vault.errors import InputError, IntegrityError
from vault.i18n import Message, N_

#: Printable ASCII without whitespace or "/", 1-64 characters (the numbering schemes' contract).
ARCHIVE_NUMBER = re.compile(r"[!-.0-~]{1,64}\Z")
DOCUMENT_NUMBER = re.compile(r"([!-.0-~]{1,64})/([0-9]{4,9})\Z")
RANDOM_ID = re.compile(r"[0-9a-f]{32}\Z")
_NUMBERED = {"request": "R", "grant": "G", "destruction": "D", "recovery export": "E"}
_NUMBER_NAMES = {"request": N_("request number"), "grant": N_("grant number"), "destruction": N_("destruction number"),
                 "recovery export": N_("recovery export number")}


def _bad(kind: str, text: object, example: str, what: str | None) -> Exception:
    shown = repr(text)[:80]
    if what is not None:
        return IntegrityError(N_("{what}: bad {kind} {shown} (damaged or forged)"), what=what, kind=kind, shown=shown)
    return InputError(N_("bad {kind} {shown}"), hint=N_("{kind}s look like {example}"), kind=kind, shown=shown, example=example)


def _match(rx: re.Pattern[str], kind: str, text: object, example: str, what: str | None) -> str:
    if not isinstance(text, str) or not rx.match(text):
        raise _bad(kind, text, example, what)
    return text


def _numbered(kind: str, text: object, what: str | None) -> str:
    prefix = _NUMBERED[kind]
    return _match(re.compile(rf"{prefix}-[0-9]{{6,12}}\Z"), Message(_NUMBER_NAMES[kind]), text, f"{prefix}-000001", what)


def request_no(text: object, *, what: str | None = None) -> str:
    """A request number: ``R-`` and six (or more) digits."""
    return _numbered("request", text, what)


def grant_no(text: object, *, what: str | None = None) -> str:
    """A grant number: ``G-`` and six (or more) digits."""
    return _numbered("grant", text, what)


def destruction_no(text: object, *, what: str | None = None) -> str:
    """A destruction number: ``D-`` and six (or more) digits."""
    return _numbered("destruction", text, what)


def recovery_no(text: object, *, what: str | None = None) -> str:
    """A disaster-recovery export number: ``E-`` and six (or more) digits."""
    return _numbered("recovery export", text, what)


def intake_id(text: object, *, what: str | None = None) -> str:
    """An intake submission id: 128 random bits in lowercase hex."""
    return _match(RANDOM_ID, Message(N_("intake id")), text, Message(N_("32 hex digits")), what)


def dossier_id(text: object, *, what: str | None = None) -> str:
    """An opaque dossier id (also document and key ids): 128 random bits in lowercase hex."""
    return _match(RANDOM_ID, Message(N_("dossier id")), text, Message(N_("32 hex digits")), what)


def archive_number(text: object, *, what: str | None = None) -> str:
    """An archive number (a dossier's): printable ASCII, no whitespace or ``/``, at most 64."""
    return _match(ARCHIVE_NUMBER, Message(N_("archive number")), text, "E-2026-000001", what)


def document_number(text: object, *, what: str | None = None) -> str:
    """A document number: ``<archive number>/<4-digit sequence>``."""
    return _match(DOCUMENT_NUMBER, Message(N_("document number")), text, "E-2026-000001/0001", what)


def target_number(text: object, *, what: str | None = None) -> str:
    """An archive number or a document number (what requests, holds and destructions name)."""
    if isinstance(text, str) and "/" in text:
        return document_number(text, what=what)
    return archive_number(text, what=what)
