"""The search tokenizer's run scanner splits text exactly as the regular expression that defines it [R-1.3.4].

The index finds CJK text by character bigrams and other words by their first two characters; which
characters form a run is defined by the expression below. The index code scans by code point instead
(compiling the expression cost every command ~6 ms); both must agree on every string, or a value
indexed by one version would not be found by a query tokenized by another.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from vault.store import searchtext

CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
RUN = re.compile(r"(?P<cjk>" + CJK + r"+)|(?P<word>(?:(?!" + CJK + r")[^\W_])+)")

# Characters at and around every range's edges, full-width and compatibility forms, digits of other
# scripts, the underscore (a \w character that is not part of a word here) and separators.
EDGES = "".join(chr(c) for lo, hi in searchtext._CJK_RANGES for c in (lo - 1, lo, lo + 1, hi - 1, hi, hi + 1))
ALPHABET = EDGES + "aZ09_ -.@()（）　杭州标记科技有限公司あカ한𠀀Ⅻ²½٣ßﬁ\u0301"


def by_regex(value: str) -> list[tuple[int, str, bool]]:
    return [(m.start(), m.group(), m.group("cjk") is not None) for m in RUN.finditer(value)]


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40) | st.text(max_size=40))
@example("杭州标记科技有限公司 Hangzhou Marker_Tech 0571-8800")
@example("")
def test_runs_match_the_defining_expression(value: str) -> None:
    assert searchtext._runs(value) == by_regex(value)
    folded = searchtext.fold(value)
    assert searchtext._runs(folded) == by_regex(folded)
