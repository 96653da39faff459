"""A second replay in one process (``vault check`` after the command's own) does not verify a signature twice — and still catches every forgery.

A process remembers each history line whose signature it verified, with the member key it verified
it under; the same line under the same key verifies the same way, so the second replay skips it.
A line changed in any byte (its signature, its content) is another line and is verified afresh.
"""

from __future__ import annotations

import base64
import json

import pytest

from office import make_office
from vault.archive import authority
from vault.archive.vault import Vault
from vault.crypto import sign
from vault.errors import IntegrityError


@pytest.fixture
def office(tmp_path, monkeypatch):
    o = make_office(tmp_path, monkeypatch)
    o.create(name="Replayed Customer")
    return o


def _counting(monkeypatch) -> list[int]:
    calls = [0]
    real = sign.verify

    def verify(*a, **kw):
        calls[0] += 1
        return real(*a, **kw)

    monkeypatch.setattr(sign, "verify", verify)
    return calls


def test_the_second_full_replay_verifies_no_signature_again(office, monkeypatch):
    v = Vault.open(office.vault_dir)
    authority._VERIFIED.clear()
    calls = _counting(monkeypatch)
    first = authority.full_replay(v)
    assert calls[0] == first.state["count"] >= 2  # every entry's signature, the first time
    calls[0] = 0
    second = authority.full_replay(Vault.open(office.vault_dir))
    assert calls[0] == 0 and second.state["head"] == first.state["head"]


@pytest.mark.parametrize("what", ["signature", "content"])
def test_a_line_forged_after_this_process_verified_the_history_is_caught(office, what):
    v = Vault.open(office.vault_dir)
    authority.full_replay(v)  # every genuine line is now remembered as verified
    log = office.vault_dir / "audit" / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    e = json.loads(lines[-1])
    if what == "signature":  # another signature over the same content
        sig = bytearray(base64.b64decode(e["sig"]))
        sig[0] ^= 1
        e["sig"] = base64.b64encode(bytes(sig)).decode()
    else:  # other content under the old signature
        e["at"] = e["at"].replace("20", "19", 1)
    lines[-1] = json.dumps(e, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    log.write_bytes(b"".join(lines))
    with pytest.raises(IntegrityError, match="bad signature"):
        authority.full_replay(Vault.open(office.vault_dir))
