"""The search index's text rules: which fields are indexed, how values and queries are folded, and their n-gram keys."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Mapping

from vault.store.searchshards import MAX_POS

#: Indexed fields, in the order they rank when a query matches several.
FIELDS = ("name", "aliases", "legal_rep", "contact", "address", "number")
FIELD_RANK = {f: i for i, f in enumerate(FIELDS)}
#: The fields ``--name`` and ``--contact`` restrict a query to.
NAME_FIELDS = ("name", "aliases")
CONTACT_FIELDS = ("contact",)

# Han (with extensions and compatibility ideographs), kana and hangul: scripts written without spaces,
# so a "word" is a run of them and is indexed by character bigrams. Tested by code point, not by a
# regular expression: compiling a character class over these ranges costs ~6 ms at every start-up.
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF),
               (0x20000, 0x3134F))


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return o >= 0x3040 and any(lo <= o <= hi for lo, hi in _CJK_RANGES)


def _runs(value: str) -> list[tuple[int, str, bool]]:
    """(start, text, is CJK) of each maximal run of CJK characters and of each maximal run of other
    letters and digits (``str.isalnum``: what ``[^\\W_]`` matches), in order."""
    out: list[tuple[int, str, bool]] = []
    start, kind = 0, None  # kind: None outside a run, True in a CJK run, False in a word
    for i, ch in enumerate(value):
        k = True if _is_cjk(ch) else False if ch.isalnum() else None
        if k is not kind:
            if kind is not None:
                out.append((start, value[start:i], kind))
            start, kind = i, k
    if kind is not None:
        out.append((start, value[start:], kind))
    return out


_PHONE = re.compile(r"^[+\d][\d\s\-().]*$")
_SEPARATORS = re.compile(r"[\s\-().]")


def fold(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: full-width and compatibility forms meet their plain ones."""
    v = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(v.split())


def fold_contact(text: str) -> str:
    """A contact as indexed: folded; a phone number (no ``@``) without spaces, ``-``, ``(``, ``)``, ``.``."""
    v = fold(text)
    return v if "@" in v else _SEPARATORS.sub("", v)


def query_words(text: str) -> list[str]:
    """The words of a query, folded; a phone-like query is one word without separators."""
    v = fold(text)
    if _PHONE.match(v) and sum(c.isdigit() for c in v) >= 3:
        return [_SEPARATORS.sub("", v)]
    return v.split()


def word_tokens(value: str) -> str:
    """What the two-character table holds for a folded value: CJK runs as bigrams, other words whole."""
    out = []
    for _, run, cjk in _runs(value):
        if cjk:
            out.extend([run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)])
        else:
            out.append(run)
    return " ".join(out)


def entries(number: str, profile: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (field, folded value) rows a dossier is found by."""
    rows = [("number", fold(number))]
    for f in ("name", "legal_rep", "address"):
        if profile.get(f):
            rows.append((f, fold(profile[f])))
    rows += [("aliases", fold(a)) for a in profile.get("aliases") or [] if a.strip()]
    rows += [("contact", fold_contact(c)) for c in profile.get("contact") or [] if c.strip()]
    return [(f, v) for f, v in rows if v]


def grams_of(value: str) -> dict[str, list[tuple[int, bool]]]:
    """The keys a folded value is found by, with (position, at a word start) of each occurrence:
    every trigram, every CJK character bigram and the first two characters of every other word."""
    out: dict[str, list[tuple[int, bool]]] = {}

    def ws(i: int) -> bool:
        return i == 0 or not value[i - 1].isalnum()

    for i in range(min(len(value) - 2, MAX_POS + 1)):
        out.setdefault(value[i:i + 3], []).append((i, ws(i)))
    for at, run, cjk in _runs(value):
        if cjk:
            for i in range(len(run) - 1):
                if at + i <= MAX_POS:
                    out.setdefault(run[i:i + 2], []).append((at + i, ws(at + i)))
        elif len(run) >= 2 and at <= MAX_POS:
            out.setdefault(run[:2], []).append((at, ws(at)))
    return out
