"""Interoperability with the reference age command-line tool, in both directions.

age 1.1.1 (Debian) has no mlkem768x25519 support, so hybrid files are covered by the
CCTV vectors and our own round trips only. age reads passphrases from the terminal,
so the scrypt cases run it under a pseudo-terminal and type the passphrase.
"""

from __future__ import annotations

import hashlib
import io
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from vault.crypto.age import (
    ScryptPassphrase,
    decrypt,
    encrypt,
    generate_identity,
    parse_identity,
    parse_recipient,
    recipient_of,
)

SIZES = [0, 1, 65536, 65537, 5 * 1024 * 1024 + 123]
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def age_bin() -> str:
    path = shutil.which("age")
    if path is None or shutil.which("age-keygen") is None:
        pytest.fail("the age command-line tool is not on PATH: run `apt-get install -y age`")
    return path


def _plaintext(size: int) -> bytes:
    # Deterministic and not all zeros, so a chunk misplacement would show.
    seed = hashlib.sha256(str(size).encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def _keys(kind: str, tmp_path: Path) -> tuple[str, str]:
    """(identity text, recipient text) made by age-keygen or by us."""
    if kind == "age-keygen":
        key_file = tmp_path / "keygen.txt"
        subprocess.run(["age-keygen", "-o", str(key_file)], check=True, capture_output=True)
        secret = next(ln for ln in key_file.read_text().splitlines() if ln.startswith("AGE-SECRET-KEY-1"))
        public = subprocess.run(
            ["age-keygen", "-y", str(key_file)], check=True, capture_output=True, text=True
        ).stdout.strip()
        assert recipient_of(secret) == public
        return secret, public
    secret = generate_identity("x25519")
    return secret, recipient_of(secret)


@pytest.mark.parametrize("keys", ["age-keygen", "ours"])
@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", SIZES)
def test_ours_to_age(age_bin: str, tmp_path: Path, keys: str, armored: bool, size: int) -> None:
    secret, public = _keys(keys, tmp_path)
    (tmp_path / "key.txt").write_text(secret + "\n")
    data = _plaintext(size)
    enc = tmp_path / "file.age"
    with open(enc, "wb") as dst:
        encrypt(io.BytesIO(data), dst, [parse_recipient(public)], armor=armored)
    if armored:
        assert enc.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    out = subprocess.run(
        [age_bin, "-d", "-i", str(tmp_path / "key.txt"), str(enc)], check=True, capture_output=True
    ).stdout
    assert out == data


@pytest.mark.parametrize("keys", ["age-keygen", "ours"])
@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", SIZES)
def test_age_to_ours(age_bin: str, tmp_path: Path, keys: str, armored: bool, size: int) -> None:
    secret, public = _keys(keys, tmp_path)
    data = _plaintext(size)
    src = tmp_path / "plain"
    src.write_bytes(data)
    enc = tmp_path / "file.age"
    subprocess.run(
        [age_bin, "-e", "-r", public, *(["-a"] if armored else []), "-o", str(enc), str(src)],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "out"
    with open(enc, "rb") as s, open(out, "wb") as d:
        decrypt(s, d, [parse_identity(secret)])
    assert out.read_bytes() == data


def _run_in_terminal(argv: list[str], passphrases: list[str], timeout: float = 60) -> int:
    """Run argv on a pseudo-terminal, typing a passphrase at each prompt; return the exit code."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: age opens /dev/tty, which is now the pty
        os.execvp(argv[0], argv)
    pending, screen, deadline = list(passphrases), b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.2)[0]:
                continue
            try:
                data = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            screen += data
            if pending and screen.rstrip().endswith(b":") and b"passphrase" in screen.lower():
                os.write(fd, pending.pop(0).encode() + b"\n")
                screen = b""
        else:
            os.kill(pid, 9)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
def test_passphrase_ours_to_age(age_bin: str, tmp_path: Path, armored: bool) -> None:
    data = _plaintext(70000)
    enc, out = tmp_path / "file.age", tmp_path / "out"
    with open(enc, "wb") as dst:
        encrypt(io.BytesIO(data), dst, [ScryptPassphrase(PASSPHRASE, work_factor=12)], armor=armored)
    assert _run_in_terminal([age_bin, "-d", "-o", str(out), str(enc)], [PASSPHRASE]) == 0
    assert out.read_bytes() == data


@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
def test_passphrase_age_to_ours(age_bin: str, tmp_path: Path, armored: bool) -> None:
    data = _plaintext(70000)
    src, enc = tmp_path / "plain", tmp_path / "file.age"
    src.write_bytes(data)
    argv = [age_bin, "-p", *(["-a"] if armored else []), "-o", str(enc), str(src)]
    assert _run_in_terminal(argv, [PASSPHRASE, PASSPHRASE]) == 0
    with open(enc, "rb") as s, open(tmp_path / "out", "wb") as d:
        decrypt(s, d, [ScryptPassphrase(PASSPHRASE)])  # age uses work factor 18
    assert (tmp_path / "out").read_bytes() == data
