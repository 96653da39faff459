"""``vault check`` reads each document once, on worker threads, and still names every damaged one in order."""

from __future__ import annotations

import pytest

from vault.archive.manifests import load_manifest, resolve
from vault.archive.vault import Vault
from vault.office import check as checker
from vault.store import identity

from office import PASSPHRASE


@pytest.fixture
def office(office, tmp_path):
    """Three dossiers of three documents each, up to ~250 KB."""
    o = office
    o.numbers = [o.create(name=f"Check Customer {i}") for i in range(3)]
    for k, no in enumerate(o.numbers):
        for i in range(3):
            f = tmp_path / f"d{k}-{i}.txt"
            f.write_bytes(f"document {k}/{i}\n".encode() * (1000 + 7000 * i))  # up to ~250 KB
            o.add_doc(no, f)
    return o


def _flip(path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("in_memory", [True, False], ids=["read-once", "streamed"])
@pytest.mark.parametrize("read_data", [False, True], ids=["no-key", "read-data"])
def test_every_damaged_document_is_named_in_dossier_order(office, monkeypatch, in_memory, read_data):
    if not in_memory:
        monkeypatch.setattr(checker, "_IN_MEMORY", 1000)  # every document larger: hashed, then decrypted apart
    v = Vault.open(office.vault_dir)
    actor = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE)) if read_data else None
    rep = checker.check(v, actor=actor)
    assert rep.ok, rep.problems
    assert rep.counts["documents"] == 9
    victims = []
    for no in office.numbers[::2]:  # the first and the last dossier
        m = load_manifest(v, resolve(v, no))
        d = m.documents[-1]
        _flip(v.layout.document(m.id, d.id), -20)  # inside the last chunk's ciphertext
        victims.append((m.id, f"dossiers/{m.id}/documents/{d.id}.age ({d.number}): ciphertext hash "
                                 "does not match the manifest (damaged or tampered with)"))
    rep = checker.check(Vault.open(office.vault_dir), actor=actor)
    assert [str(p) for p in rep.problems] == [p for _, p in sorted(victims)]
    assert rep.counts["documents"] == 9
