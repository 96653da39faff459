"""Display names as people write them (张三, 销售部): validated, normalised, and never two that look alike.

A member, department, business type or class has a stable *id* (``[a-z0-9][a-z0-9._-]{0,63}``: it
becomes a file name or a token) and may have a *display name* in any script. A display name is what
people read, so it is where a spoofer works: this module refuses invisible and direction-changing
characters, mixed scripts (a Cyrillic ``а`` inside a Latin name), and — through ``skeleton`` — a name
that would look like another member's name or id (``zhangsаn`` for ``zhangsan``, ``カ`` for ``力``).
Lookups (``resolve``) accept an id or a display name and say which candidates an ambiguous text names.
"""

from __future__ import annotations

import os  # os.urandom, as secrets does (importing secrets loads random, on every command)
import re
import unicodedata
from typing import Iterable, Mapping

from vault.errors import InputError, NotFoundError
from vault.i18n import N_

#: The id form (also ``vault.store.layout.NAME_RE``): lowercase tokens that become file names.
ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
#: Longest display name, in characters after normalisation.
MAX_DISPLAY = 64
#: Prefix of a generated id, per kind (an id carries no meaning; the prefix tells a reader its kind).
ID_PREFIX = {"member": "m-", "department": "d-", "business type": "b-", "class": "c-"}

# Unicode general categories a name may never hold: controls, format characters (bidi overrides and
# isolates, zero-width joiners and spaces, the BOM), surrogates, private use, unassigned code points,
# line and paragraph separators. An unassigned code point may become anything in a later Unicode.
_REFUSED_CATEGORIES = {
    "Cc": N_("bad {kind} display name: it holds a control character (U+{code})"),
    "Cf": N_("bad {kind} display name: it holds an invisible or direction-changing character (U+{code})"),
    "Cs": N_("bad {kind} display name: it holds a surrogate (U+{code})"),
    "Co": N_("bad {kind} display name: it holds a private-use character (U+{code})"),
    "Cn": N_("bad {kind} display name: it holds an unassigned code point (U+{code})"),
    "Zl": N_("bad {kind} display name: it holds a line separator (U+{code})"),
    "Zp": N_("bad {kind} display name: it holds a paragraph separator (U+{code})"),
    "Me": N_("bad {kind} display name: it holds an enclosing mark (U+{code})"),
}

# Scripts that UTS #39's "highly restrictive" level lets a name mix (Latin with the scripts of
# Chinese, Japanese and Korean writing); any other mix is refused.
_ALLOWED_MIXES = ({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}, {"LATIN", "HAN", "BOPOMOFO"}, {"LATIN", "HAN", "HANGUL"})

# Characters that look like another in common fonts, mapped to one representative (a subset of
# UTS #39 confusables.txt for the scripts an office meets: Latin, Cyrillic, Greek, Han and kana).
# Applied after NFKC and case folding, so full-width forms and capitals are covered too.
_CONFUSABLE = {
    # Cyrillic -> Latin
    "а": "a", "в": "b", "е": "e", "ё": "e", "г": "r", "һ": "h", "і": "l", "ї": "l", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ь": "b", "з": "3", "ч": "4", "ɡ": "g",
    # Greek -> Latin
    "α": "a", "β": "b", "γ": "y", "ε": "e", "ζ": "z", "η": "n", "ι": "l", "κ": "k", "μ": "u", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Latin and digits among themselves (as UTS #39: 0/o, 1/l/I)
    "0": "o", "1": "l", "i": "l", "ı": "l", "|": "l",
    # kana and symbols that look like Han characters, and Han characters that look alike
    "ー": "一", "―": "一", "—": "一", "－": "一", "ｰ": "一", "カ": "力", "エ": "工", "ロ": "口", "タ": "夕",
    "ト": "卜", "ニ": "二", "ハ": "八", "ヘ": "へ", "ペ": "ぺ", "ベ": "べ", "〇": "o", "○": "o",
    "已": "己", "巳": "己", "末": "未", "士": "土", "千": "干", "于": "干", "曰": "日", "入": "人",
    "戌": "戊", "戍": "戊", "夭": "天",
}
# Letter pairs that read as one letter (UTS #39: rn/m, vv/w, cl/d).
_CONFUSABLE_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def is_id(text: object) -> bool:
    """Whether ``text`` is of the id form."""
    return isinstance(text, str) and bool(ID_RE.match(text))


def _script(ch: str) -> str | None:
    """The script of a letter, from its Unicode name (the stdlib has no Script property); None for
    characters common to every script (digits, punctuation, spaces, the prolonged sound mark)."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK ", "IDEOGRAPHIC ")):
        return "HAN"
    if name.startswith("KATAKANA-HIRAGANA"):
        return None
    return name.split(" ", 1)[0] or "UNKNOWN"


def _refuse(kind: str, message: str, **params: str) -> InputError:
    return InputError(message, hint=N_("write the {kind}'s name in one script, without control or invisible "
                                       "characters (max {max})"), kind=kind, max=MAX_DISPLAY, **params)


def display_name(text: object, *, kind: str = "member", strict: bool = True) -> str:
    """``text`` as a display name: NFKC-normalised, spaces collapsed; refused (InputError) when it holds
    invisible, control or direction-changing characters, mixes scripts, or is empty or too long.

    ``strict=False`` lets unassigned code points pass: the history's replay uses it, since a code
    point the writer's newer Unicode assigned is unassigned to an older one, and what counts in the
    history must not depend on the machine that replays it (commands always check strictly).
    """
    if not isinstance(text, str):
        raise _refuse(kind, N_("bad {kind} display name: not text"))
    # NFKC folds full-width and compatibility forms (Ａ, ㈱, ⼈) to what they look like, so the stored
    # form is the one people see, and two spellings of one look are one name.
    norm = unicodedata.normalize("NFKC", text)
    marks = 0
    for i, ch in enumerate(norm):
        cat = unicodedata.category(ch)
        if cat in _REFUSED_CATEGORIES and (strict or cat != "Cn"):
            raise _refuse(kind, _REFUSED_CATEGORIES[cat], code=f"{ord(ch):04X}")
        if cat == "Zs" and ch != " ":
            raise _refuse(kind, N_("bad {kind} display name: it holds an unusual space (U+{code})"), code=f"{ord(ch):04X}")
        if cat in ("Mn", "Mc"):
            marks += 1
            # A mark stacks on the letter before it; a leading mark or a pile of them hides text.
            if i == 0 or marks > 2 or unicodedata.category(norm[i - 1])[0] not in "LM":
                raise _refuse(kind, N_("bad {kind} display name: a combining mark (U+{code}) stands alone or is stacked"),
                              code=f"{ord(ch):04X}")
        else:
            marks = 0
    if "/" in norm or "\\" in norm:
        # Class names are shown joined by "/" (企业客户/网络服务): a slash inside one would forge a level.
        raise _refuse(kind, N_("bad {kind} display name: it holds a slash"))
    norm = re.sub(" +", " ", norm).strip()
    if not norm:
        raise _refuse(kind, N_("bad {kind} display name: it is empty"))
    if len(norm) > MAX_DISPLAY:
        raise _refuse(kind, N_("bad {kind} display name: it is longer than {max} characters"))
    if not any(unicodedata.category(c)[0] in "LN" for c in norm):
        raise _refuse(kind, N_("bad {kind} display name: it has no letter or digit"))
    scripts = {s for s in map(_script, norm) if s is not None}
    if len(scripts) > 1 and not any(scripts <= mix for mix in _ALLOWED_MIXES):
        raise _refuse(kind, N_("bad {kind} display name: it mixes scripts ({scripts})"),
                      scripts=", ".join(sorted(scripts)).lower())
    zeros = {ord(c) - unicodedata.digit(c) for c in norm if unicodedata.category(c) == "Nd"}
    if len(zeros) > 1:
        raise _refuse(kind, N_("bad {kind} display name: it mixes digits of different scripts"))
    return norm


def skeleton(text: str) -> str:
    """What ``text`` looks like: two names with the same skeleton may be taken for each other.

    NFKC, case folding, accents dropped, spaces and punctuation dropped, confusable characters mapped
    to one representative. Ids are compared the same way (``zhang-san`` looks like ``Zhang San``).
    """
    s = unicodedata.normalize("NFKC", text).casefold()
    s = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", s))
    # Unassigned code points stay: a newer Unicode may make one a letter, which must compare the same.
    s = "".join(c for c in s if unicodedata.category(c)[0] not in "MPZ" and unicodedata.category(c) not in ("Cc", "Cf"))
    s = unicodedata.normalize("NFC", s)
    s = "".join(_CONFUSABLE.get(c, c) for c in s)
    for pair, one in _CONFUSABLE_PAIRS:
        s = s.replace(pair, one)
    return s


def clash(name: str, taken: Mapping[str, Iterable[str]]) -> list[str]:
    """The ids in ``taken`` (id -> its id and display names) one of whose names looks like ``name``."""
    sk = skeleton(name)
    return sorted(i for i, names in taken.items() if any(skeleton(n) == sk for n in names))


def new_id(kind: str, display: str, taken: Iterable[str]) -> str:
    """An id for something whose name is not of the id form: the name itself lowercased when that is
    an id (``Zhang-San`` -> ``zhang-san``), else a random one (``m-3f9a0c1d``) — never one in ``taken``."""
    taken = set(taken)
    lowered = display.lower().replace(" ", "-")
    if is_id(lowered) and lowered not in taken:
        return lowered
    while True:
        cand = ID_PREFIX.get(kind, "x-") + os.urandom(4).hex()
        if cand not in taken:
            return cand


def resolve(kind: str, text: str, names: Mapping[str, str | None], *, listing: str) -> str:
    """The id that ``text`` names among ``names`` (id -> display name or None): an exact id first,
    then an exact display name, then a name that looks the same; NotFound when none does, and an
    InputError listing the candidates when more than one does at the same step."""
    folded = unicodedata.normalize("NFKC", text).strip()
    steps = (
        [i for i in names if i == text],
        [i for i, d in names.items() if d is not None and d == folded],
        [i for i, d in names.items() if skeleton(text) in {skeleton(i), skeleton(d or i)}],
    )
    for found in steps:
        if len(found) == 1:
            return found[0]
        if found:
            shown = ", ".join(f"{i} ({names[i]})" if names[i] else i for i in sorted(found))
            raise InputError(N_("{kind} {text!r} is ambiguous: it may be {candidates}"), hint=N_("give the {kind}'s id"),
                             kind=kind, text=text, candidates=shown)
    raise NotFoundError(N_("no {kind} {text!r}"), hint=N_("see {listing}"), kind=kind, text=text, listing=listing)


def shown(ident: str, display: str | None) -> str:
    """How a name is printed: ``张三 (zhangsan)``, or the id alone when it has no other name."""
    return f"{display} ({ident})" if display and display != ident else ident
