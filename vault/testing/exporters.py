"""The export-format conformance suite of ``vault.testing``: no plaintext a caller may not read, the vault untouched.

PYTEST_DONT_REWRITE: the suite's own messages say what is wrong; pytest's comparison of large
objects would only add noise (and time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vault.office import documents, dossier, export

from vault.archive import manifests
from vault.office import membership
from vault.errors import VaultError
from vault.archive.exportview import ExportDocument, ExportDossier
from vault.store.identity import MemberIdentity
from vault.archive.manifests import read_table
from vault.testing.base import Conformance
from vault.archive.vault import Actor, Vault

#: Customer data of the sample dossier, in sealed fields and content: none may reach a non-reader's export.
EXPORT_MARKERS = {
    "name": "Kit Marker Customer Quenby-Vasquez",
    "address": "17 Kit Marker Lane",
    "contact": "kit.marker@example.org",
    "legal_rep": "Kit Marker Legal Rep",
    "title": "Kit Marker Title of a Merger",
    "source": "Kit Marker Source Desk",
    "filename": "kit-marker-filename",
    "content": "KIT-MARKER-CONTENT-5c1e",
}


@dataclass
class SampleDossier:
    """A real vault in a temporary directory with one dossier full of markers, a reader and a non-reader."""

    vault: Vault
    reader: Actor
    non_reader: Actor
    number: str

    def views(self, *, readable: bool, reads: frozenset[str], fmt: str) -> tuple[ExportDossier, list[ExportDocument]]:
        """The views the vault gives an exporter for the reader (granted ``reads``) or the non-reader (nothing)."""
        actor = self.reader if readable else self.non_reader
        m = manifests.load_manifest(self.vault, manifests.resolve(self.vault, self.number))
        table = read_table(self.vault, m.id, actor.read_identities()) \
            if readable else None
        return export.make_views(actor, m, table, reads if readable else frozenset(), fmt=fmt,
                                 request="R-000001" if readable else None)


def make_sample_dossier(directory: Path) -> SampleDossier:
    """Build a vault under ``directory / "vault"``: a supervisor (reader), a staff member, and a dossier of 3 documents."""
    boss, staff = MemberIdentity.generate(), MemberIdentity.generate()
    v = Vault.init(directory / "vault", supervisor="kit-reader", key=boss.public)
    reader = v.act_as(boss)
    membership.add_member(reader, "kit-staff", staff.public, ["staff"], "sales")
    number = dossier.create(reader, customer_type="enterprise", business="network-services", dept="sales",
                            profile={k: EXPORT_MARKERS[k] for k in ("name", "address", "legal_rep")}
                            | {"contact": [EXPORT_MARKERS["contact"]]})
    inbox = directory / "inbox"
    inbox.mkdir()
    made: list[str] = []
    for i, size in enumerate((1, 3000, 70_000)):
        f = inbox / f"{EXPORT_MARKERS['filename']}-{i}.txt"
        f.write_bytes(f"{EXPORT_MARKERS['content']} {i}\n".encode() * size)
        made += documents.add(reader, number, [f], category="contract", source=EXPORT_MARKERS["source"],
                              date="2026-02-03", original=True, title=EXPORT_MARKERS["title"],
                              replaces=made[0] if i == 2 else None)
    return SampleDossier(v, reader, v.act_as(staff), number)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root``: relative path -> (mode, SHA-256)."""
    return {str(p.relative_to(root)): (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [f"{what} {', '.join(names[:5])}" for what, names in
             (("added", added), ("removed", removed), ("changed", changed)) if names]
    return "; ".join(parts)


def found_markers(path: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, list[str]]:
    """Marker name -> files under ``path`` (or ``path`` itself) that contain it, leaving out ``skip``."""
    files = [path] if path.is_file() else [p for p in sorted(path.rglob("*")) if p.is_file()
                                           and not any(p.is_relative_to(s) for s in skip)]
    found: dict[str, list[str]] = {}
    for f in files:
        data = f.read_bytes()
        for name, marker in EXPORT_MARKERS.items():
            if marker.encode() in data:
                found.setdefault(name, []).append(f.name)
    return found


class ExporterConformance(Conformance):
    """The contract of an export format [R-3.4.2]: it writes no plaintext a caller may not read, writes to its
    destination only, never touches the vault, and a catalogue (an exporter that does not read content)
    writes the same bytes for the same dossier."""

    family = "export_formats"

    @pytest.fixture
    def vault_sample(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SampleDossier:
        """A sample vault; the test runs in a scratch directory, with ``VAULT_DIR`` pointing at the vault as
        on a real command line, so that an exporter writing to either is caught."""
        sample = make_sample_dossier(tmp_path)
        monkeypatch.setenv("VAULT_DIR", str(sample.vault.root))
        (tmp_path / "cwd").mkdir()
        monkeypatch.chdir(tmp_path / "cwd")
        return sample

    def _export(self, name: str, exporter: Any, sample: SampleDossier, dest: Path, *, readable: bool) -> None:
        before = snapshot(sample.vault.root)
        views = sample.views(readable=readable, reads=export.reads_of(exporter), fmt=name)
        try:
            export.write_export(exporter, *views, dest)
        finally:
            changes = _changes(before, snapshot(sample.vault.root))
            assert not changes, f"{name}: wrote inside the vault directory: {changes}"

    def test_declarations(self, vault_case: tuple) -> None:
        """``kind`` is file or directory, ``suffix`` a str, ``reads`` a subset of {"sealed", "content"}."""
        name, registration, options = vault_case
        problem = export.declaration_problem(registration.factory(options))
        assert problem is None, f"{name}: {problem}"

    def test_exports_for_a_reader(self, vault_case: tuple, vault_sample: SampleDossier, tmp_path: Path) -> None:
        """A reader's export, granted what the exporter declares it reads, succeeds and leaves the vault as it was."""
        name, registration, options = vault_case
        exporter = registration.factory(options)
        dest = tmp_path / "out" / "reader"
        dest.parent.mkdir()
        try:
            self._export(name, exporter, vault_sample, dest, readable=True)
        except VaultError as exc:
            pytest.fail(f"{name}: failed for a reader granted {sorted(export.reads_of(exporter))}: "
                        f"{type(exc).__name__}: {exc} (does it use more than it declares in reads?)", pytrace=False)
        assert dest.exists(), f"{name}: wrote nothing"

    def test_no_plaintext_for_a_non_reader(self, vault_case: tuple, vault_sample: SampleDossier, tmp_path: Path) -> None:
        """After a reader's export by the same exporter, a non-reader's export holds none of the sealed or
        content markers, and nothing with them is written outside the destinations."""
        name, registration, options = vault_case
        exporter = registration.factory(options)
        out = tmp_path / "out"
        out.mkdir()
        self._export(name, exporter, vault_sample, out / "reader", readable=True)  # fills any cache it keeps
        try:
            self._export(name, exporter, vault_sample, out / "non-reader", readable=False)
        except VaultError as exc:
            # The vault never runs a content exporter for a non-reader; shown nothing, it may refuse.
            assert "content" in export.reads_of(exporter), (
                f"{name}: a catalogue must work for a caller who may not read: {type(exc).__name__}: {exc}")
        leaked = found_markers(out / "non-reader") if (out / "non-reader").exists() else {}
        assert not leaked, f"{name}: wrote what the caller may not read: {sorted(leaked)} (in {leaked})"
        stray = found_markers(tmp_path, skip=(vault_sample.vault.root, tmp_path / "inbox", out / "reader"))
        assert not stray, f"{name}: wrote plaintext outside its destination: {stray}"

    def test_catalogue_is_deterministic(self, vault_case: tuple, vault_sample: SampleDossier, tmp_path: Path) -> None:
        """A catalogue (no content read) writes the same bytes for the same dossier, every time; an
        exporter that reads content (fresh encryption, dates) at least writes the same set of files."""
        name, registration, options = vault_case
        if "content" in export.reads_of(registration.factory(options)):
            names = []
            for i in range(2):
                dest = tmp_path / "out" / str(i)
                dest.parent.mkdir(exist_ok=True)
                self._export(name, registration.factory(options), vault_sample, dest, readable=True)
                assert dest.exists(), f"{name}: wrote nothing"
                names.append(sorted(snapshot(dest)) if dest.is_dir() else [dest.stat().st_size > 0])
            assert names[0] == names[1], f"{name}: two exports of the same dossier hold different files"
            return
        outputs = []
        for i, readable in enumerate((True, True, False, False)):
            dest = tmp_path / "out" / str(i)
            dest.parent.mkdir(exist_ok=True)
            self._export(name, registration.factory(options), vault_sample, dest, readable=readable)
            outputs.append(snapshot(dest) if dest.is_dir() else dest.read_bytes())
        assert outputs[0] == outputs[1], f"{name}: not deterministic for a reader: two exports differ"
        assert outputs[2] == outputs[3], f"{name}: not deterministic for a non-reader: two exports differ"

    def test_through_the_vault(self, vault_case: tuple, vault_sample: SampleDossier, tmp_path: Path) -> None:
        """The registration builds an exporter that works through the vault's guarded path."""
        name, registration, options = vault_case
        exporter = registration(options)
        self._export(name, exporter, vault_sample, tmp_path / "guarded", readable=True)
