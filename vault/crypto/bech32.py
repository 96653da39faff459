"""Bech32 (BIP 173) without the 90-character limit, as age uses it for keys."""

from __future__ import annotations

from vault.errors import FormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
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
        raise FormatError("bech32: illegal zero padding")
    elif (acc << (to_bits - bits)) & maxv:
        raise FormatError("bech32: non-zero padding")
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
        raise FormatError("bech32: mixed case")
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise FormatError("bech32: separator at invalid position")
    hrp = text[:pos]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise FormatError("bech32: invalid character in HRP")
    values = []
    for c in text[pos + 1 :].lower():
        index = _CHARSET.find(c)
        if index < 0:
            raise FormatError("bech32: invalid character in data")
        values.append(index)
    if _polymod(_hrp_expand(hrp.lower()) + values) != 1:
        raise FormatError("bech32: invalid checksum")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, False))
