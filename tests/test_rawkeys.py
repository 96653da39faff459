"""Keys loaded through the Rust binding directly are the keys the public cryptography API loads.

``vault.crypto.rawkeys`` skips cryptography's "is this supported" backend import (a start-up cost of
every command); the keys, their types and the errors on bad input must be the public API's.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from vault.crypto import rawkeys


def test_the_fast_path_is_in_use_with_this_cryptography() -> None:
    assert rawkeys.x25519_private is not rawkeys.PUBLIC["x25519_private"]


@pytest.mark.parametrize("_", range(5))
def test_x25519_keys_equal_the_public_apis(_) -> None:
    secret, peer = os.urandom(32), X25519PrivateKey.generate().public_key().public_bytes_raw()
    ours, theirs = rawkeys.x25519_private(secret), X25519PrivateKey.from_private_bytes(secret)
    assert isinstance(ours, X25519PrivateKey)
    assert ours.public_key().public_bytes_raw() == theirs.public_key().public_bytes_raw()
    assert ours.exchange(rawkeys.x25519_public(peer)) == theirs.exchange(X25519PublicKey.from_public_bytes(peer))
    assert isinstance(rawkeys.x25519_public(peer), X25519PublicKey)
    assert isinstance(rawkeys.x25519_generate(), X25519PrivateKey)


@pytest.mark.parametrize("_", range(3))
def test_mlkem_keys_equal_the_public_apis(_) -> None:
    seed = os.urandom(64)
    ours, theirs = rawkeys.mlkem_seed(seed), MLKEM768PrivateKey.from_seed_bytes(seed)
    assert isinstance(ours, MLKEM768PrivateKey)
    pub = theirs.public_key().public_bytes_raw()
    assert ours.public_key().public_bytes_raw() == pub
    assert isinstance(rawkeys.mlkem_public(pub), MLKEM768PublicKey)
    assert rawkeys.mlkem_public(pub).public_bytes_raw() == pub


@pytest.mark.parametrize("fn,public", [("x25519_private", X25519PrivateKey.from_private_bytes),
                                       ("x25519_public", X25519PublicKey.from_public_bytes),
                                       ("mlkem_seed", MLKEM768PrivateKey.from_seed_bytes),
                                       ("mlkem_public", MLKEM768PublicKey.from_public_bytes)])
@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x01" * 65])
def test_bad_bytes_raise_as_the_public_api_does(fn, public, bad) -> None:
    with pytest.raises(ValueError):
        public(bad)
    with pytest.raises(ValueError):
        getattr(rawkeys, fn)(bad)
