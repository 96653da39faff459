"""The plugin hook specifications and ``hookimpl`` at their public path (defined in :mod:`vault.plugins.hookspecs`)."""

from vault.plugins.hookspecs import (hookimpl, hookspec, vault_register_backup_targets, vault_register_classifiers,
                                     vault_register_export_formats, vault_register_notifiers,
                                     vault_register_numbering_schemes, vault_register_retention_events)

__all__ = ["hookimpl", "hookspec", "vault_register_backup_targets", "vault_register_classifiers",
           "vault_register_export_formats", "vault_register_notifiers", "vault_register_numbering_schemes",
           "vault_register_retention_events"]
