"""Bech32's fast paths (table polymod, int() bit conversion) agree with the plain bit-by-bit algorithm."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.crypto import bech32
from vault.errors import FormatError

GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def plain_polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= GEN[i]
    return chk


@settings(max_examples=300)
@given(st.lists(st.integers(0, 31), max_size=200))
def test_polymod_matches_the_plain_algorithm(values):
    assert bech32._polymod(values) == plain_polymod(values)


@settings(max_examples=500)
@given(st.lists(st.integers(0, 31), max_size=120))
def test_bit_conversion_matches_including_its_refusals(values):
    chars = "".join(bech32._CHARSET[v] for v in values)
    try:
        expected: bytes | type = bytes(bech32._convert_bits(values, 5, 8, False))
    except FormatError as e:
        expected = type(e)
        with pytest.raises(FormatError, match=str(e)):
            bech32._five_to_eight(chars)
        return
    assert bech32._five_to_eight(chars) == expected


@given(st.binary(max_size=1300))
def test_round_trip(data):
    assert bech32.decode(bech32.encode("age", data)) == ("age", data)
