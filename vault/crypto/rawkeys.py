"""Raw X25519 and ML-KEM-768 keys from bytes, without importing cryptography's OpenSSL backend module.

``X25519PrivateKey.from_private_bytes`` and its kin first import
``cryptography.hazmat.backends.openssl.backend`` (which imports the RSA, EC, DH and DSA layers) only
to ask whether the algorithm is supported, then call the Rust binding. That import is ~6 ms of every
command that opens an age file. Where the binding offers the same functions they are called
directly — they return the very objects the public methods return, and raise where the algorithm
is not supported; on a cryptography release without them, the public methods are used.
``tests/test_rawkeys.py`` holds both paths to the same keys.
"""

from __future__ import annotations

from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

PUBLIC: dict[str, Callable[..., Any]] = {
    "x25519_private": X25519PrivateKey.from_private_bytes,
    "x25519_public": X25519PublicKey.from_public_bytes,
    "x25519_generate": X25519PrivateKey.generate,
    "mlkem_seed": MLKEM768PrivateKey.from_seed_bytes,
    "mlkem_public": MLKEM768PublicKey.from_public_bytes,
}


def _direct() -> dict[str, Callable[..., Any]]:
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust

        return {"x25519_private": rust.x25519.from_private_bytes, "x25519_public": rust.x25519.from_public_bytes,
                "x25519_generate": rust.x25519.generate_key, "mlkem_seed": rust.mlkem.from_mlkem768_seed_bytes,
                "mlkem_public": rust.mlkem.from_mlkem768_public_bytes}
    except (ImportError, AttributeError):
        return dict(PUBLIC)


_F = _direct()
x25519_private: Callable[[bytes], X25519PrivateKey] = _F["x25519_private"]
x25519_public: Callable[[bytes], X25519PublicKey] = _F["x25519_public"]
x25519_generate: Callable[[], X25519PrivateKey] = _F["x25519_generate"]
mlkem_seed: Callable[[bytes], MLKEM768PrivateKey] = _F["mlkem_seed"]
mlkem_public: Callable[[bytes], MLKEM768PublicKey] = _F["mlkem_public"]
