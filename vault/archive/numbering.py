"""Number allocation in which the counters under ``index/`` are hints and the history decides.

A counter put back, lowered, damaged or deleted must never make a command issue a number the
history already gave (its record would be written over) nor fail: the next number is the counter's
or one above the highest the history knows, whichever is larger (FORMAT §2, hint files).
"""

from __future__ import annotations

import re

from vault.archive import authority
from vault.store import index

# Counter name and the record directory each kind of number lives in.
_KINDS = {"R": ("requests", "requests"), "G": ("grants", "grants"), "D": ("destructions", "destructions"),
          "L": ("loans", "paper/loans"), "I": ("inventories", "paper/inventories"), "E": ("recovery", "recovery")}


def highest(v, prefix: str) -> int:
    """The highest number of kind ``prefix`` (``R``, ``G``, ``D``, ``L``, ``I``, ``E``) the history names."""
    pat = re.compile(rf"{re.escape(_KINDS[prefix][1])}/{prefix}-(\d{{6,12}})\.")
    top = 0
    for rel in authority.state(v)["files"]:
        m = pat.match(rel)
        if m:
            top = max(top, int(m[1]))
    return top


def next_number(v, prefix: str) -> str:
    """Allocate the next ``R-``/``G-``/``D-``/``L-``/``I-``/``E-`` number (call under the exclusive lock)."""
    counter = _KINDS[prefix][0]
    return f"{prefix}-{index.next_sequence(v.root, counter, floor=highest(v, prefix)):06d}"


def allocate_archive_number(v, number_for, dossier_id: str) -> str:
    """Issue the next archive number: never one the history issued, whatever ``index/`` says."""
    numbers = authority.state(v)["numbers"]
    _, number = index.allocate_number(v.root, number_for, dossier_id, taken=numbers.__contains__,
                                      floor=len(numbers))
    return number


def next_delta(v) -> int:
    """The next search-index delta sequence number: above every delta the history names."""
    top = 0
    for rel in authority.state(v)["files"]:
        if rel.startswith("index/search/delta/") and rel.endswith(".age"):
            stem = rel[len("index/search/delta/"):-4]
            if stem.isdigit():
                top = max(top, int(stem))
    return index.next_sequence(v.root, "search/sequence", floor=top)
