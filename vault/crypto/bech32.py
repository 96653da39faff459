"""Bech32 (BIP 173) without the 90-character limit, as age uses it for keys."""

from __future__ import annotations

from vault.errors import FormatError
from vault.i18n import N_

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# _STEP[top] is the XOR of the generators selected by the five bits of ``top``: one lookup per
# character instead of five tests (hybrid keys are ~2,000 characters and parsed on every command).
_STEP = tuple(
    (_GENERATOR[0] if t & 1 else 0) ^ (_GENERATOR[1] if t & 2 else 0) ^ (_GENERATOR[2] if t & 4 else 0)
    ^ (_GENERATOR[3] if t & 8 else 0) ^ (_GENERATOR[4] if t & 16 else 0)
    for t in range(32)
)
_VALUE = {c: i for i, c in enumerate(_CHARSET)}
# The data part's characters as base-32 digits for int(): decoding the bits is one int() call.
_TO_DIGITS = str.maketrans(_CHARSET, "0123456789abcdefghijklmnopqrstuv")


def _polymod(values: list[int]) -> int:
    chk = 1
    step = _STEP
    for value in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ value) ^ step[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    # Reject over-long or non-zero padding: otherwise several strings would decode
    # to the same key, and key strings are compared and logged as identifiers.
    elif bits >= from_bits:
        raise FormatError(N_("bech32: illegal zero padding"))
    elif (acc << (to_bits - bits)) & maxv:
        raise FormatError(N_("bech32: non-zero padding"))
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` under ``hrp``; the result has the case of ``hrp`` (all upper or all lower)."""
    if hrp.lower() != hrp and hrp.upper() != hrp:
        raise ValueError("bech32: mixed-case HRP")
    if not hrp or any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("bech32: invalid HRP")
    upper = hrp != hrp.lower()
    lower_hrp = hrp.lower()
    values = _convert_bits(data, 8, 5, True)
    polymod = _polymod(_hrp_expand(lower_hrp) + values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = lower_hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)
    return text.upper() if upper else text


def decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string to (hrp, data); the HRP keeps the case it was written in."""
    if text.lower() != text and text.upper() != text:
        raise FormatError(N_("bech32: mixed case"))
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise FormatError(N_("bech32: separator at invalid position"))
    hrp = text[:pos]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise FormatError(N_("bech32: invalid character in HRP"))
    data = text[pos + 1 :].lower()
    try:
        values = [_VALUE[c] for c in data]
    except KeyError:
        raise FormatError(N_("bech32: invalid character in data")) from None
    if _polymod(_hrp_expand(hrp.lower()) + values) != 1:
        raise FormatError(N_("bech32: invalid checksum"))
    return hrp, _five_to_eight(data[:-6])


def _five_to_eight(chars: str) -> bytes:
    """The bytes of a data part (checksum removed), with the same padding rules as _convert_bits."""
    bits = 5 * len(chars)
    pad = bits % 8
    if pad >= 5:
        raise FormatError(N_("bech32: illegal zero padding"))
    n = int(chars.translate(_TO_DIGITS), 32) if chars else 0
    if n & ((1 << pad) - 1):
        raise FormatError(N_("bech32: non-zero padding"))
    return (n >> pad).to_bytes(bits // 8, "big")
