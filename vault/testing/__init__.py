"""Conformance kit for vault plugins, a pytest plugin: enable it with ``pytest_plugins = ["vault.testing"]``.

The kit's public names live here; each plugin family's suite is a module of this package.
"""

from __future__ import annotations

from vault.testing.base import (Conformance, NetworkGuard, RecordingFacts, SequenceAllocator, plugin_manager_for,
                                pytest_generate_tests, sample_facts, vault_allocator, vault_no_network)
from vault.testing.exporters import EXPORT_MARKERS, ExporterConformance, make_sample_dossier
from vault.testing.schemes import ClassifierConformance, NumberingSchemeConformance
from vault.testing.targets import BackupTargetConformance

__all__ = ["BackupTargetConformance", "ClassifierConformance", "Conformance", "EXPORT_MARKERS",
           "ExporterConformance", "NetworkGuard", "NumberingSchemeConformance", "RecordingFacts",
           "SequenceAllocator", "make_sample_dossier", "plugin_manager_for", "pytest_generate_tests", "sample_facts",
           "vault_allocator", "vault_no_network"]
