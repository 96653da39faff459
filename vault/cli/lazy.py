"""The command table: each top-level command, where it lives, and its one-line help, loaded on demand.

``vault --help`` lists every command from this table without importing any of them, and
``vault doc view`` imports only the module that defines ``doc view`` (subcommands that other modules
add to ``doc`` and ``dossier`` are in ``SUBCOMMANDS``); that is most of what keeps start-up short.
``tests/test_cli_startup.py`` checks both tables against the commands themselves (same names, same
help, same subcommands), so they cannot drift from the code.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from vault.cli.localised import LocalisedGroup, localised_command
from vault.i18n import N_, _

# name -> (("module:attribute" of the command, then modules to import with it), help's first paragraph)
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "agent": (("vault.cli.agent:agent_grp",),
              N_("An agent that holds your unlocked identity, so commands need no passphrase.")),
    "audit": (("vault.cli.access:audit_grp",), N_("The signed audit trail.")),
    "backup": (("vault.cli.backup:backup_grp",),
               N_("Offsite backups to file:// or s3:// targets (exit 0 ok, 1 error or damage found, 2 usage, 3 saved without what is no regular file).")),
    "check": (("vault.cli.core:check",),
              N_("Verify the history, signatures and ciphertext hashes (no key needed); name every damaged file.")),
    "completion": (("vault.cli.shell:completion",),
                   N_("Print the completion script for SHELL (see the README for where to put it).")),
    "demo": (("vault.cli.core:demo",), N_("Build a small sample office in DIRECTORY and say what to try next.")),
    "destroy": (("vault.cli.retention:destroy_grp",),
                N_("Destruction by procedure: request, approve, execute, certificate.")),
    "doc": (("vault.cli.core:doc_grp",), N_("Documents in dossiers.")),
    "dossier": (("vault.cli.core:dossier_grp",), N_("Customer dossiers.")),
    "export": (("vault.cli.recoveryexport:export_grp",),
               N_("Whole-vault exports: disaster recovery to age files, approved by two supervisors.")),
    "find": (("vault.cli.search:find",),
             N_("Find dossiers by name (any script, any order, parts of words), contact, number or filters.")),
    "index": (("vault.cli.search:index_grp",), N_("The sealed search index.")),
    "grant": (("vault.cli.access:grant_grp",),
              N_("Grants: REQ [--hours N] releases the keys for an approved request; list, revoke, sweep.")),
    "hold": (("vault.cli.retention:hold_grp",), N_("Legal holds: block destruction and backup pruning.")),
    "init": (("vault.cli.core:init",), N_("Create a new vault; prints its fingerprint to record offline.")),
    "intake": (("vault.cli.intake:intake_grp",),
               N_("Write-only intake: submit without read access; archivists accept or reject.")),
    "keygen": (("vault.cli.core:keygen",),
               N_("Create a member identity (age + signing key), passphrase-protected, mode 0600.")),
    "member": (("vault.cli.members:member",), N_("Members of the vault and their roles.")),
    "migrate": (("vault.cli.core:migrate",),
                N_("Upgrade a format-1 vault to format 2, in place (a supervisor; back the vault up first).")),
    "paper": (("vault.cli.paper:paper_grp",),
              N_("Paper originals: where they are, who has one out, what an inventory found.")),
    "plugins": (("vault.cli.core:plugins_grp",), N_("Installed plugins.")),
    "portal": (("vault.cli.portal:portal_grp",),
               N_("The online platform where customers submit material through an invitation link.")),
    "policy": (("vault.cli.policy:policy_grp",),
               N_("The policy: roles and rights, retention schedules, review intervals, completeness rules.")),
    "register": (("vault.cli.register:register",),
                 N_("The archive-wide register: number, customer, class, dates, counts, paper locations (audited).")),
    "repair": (("vault.cli.core:repair",),
               N_("Finish or drop what an interrupted command left half done (the archive department).")),
    "request": (("vault.cli.access:request_grp",), N_("Consultation and copy requests.")),
    "retention": (("vault.cli.retention:retention_grp",), N_("Retention schedules.")),
    "review": (("vault.cli.review:review_grp",),
               N_("Periodic review: what is stale or incomplete, recording reviews, telling departments.")),
}


# Subcommands that other modules add to a group of vault.cli.core: group -> {subcommand: module}. The
# module is imported when its subcommand is asked for (or the group's help is), so `doc view` does not
# load the retention, export or maintenance commands.
SUBCOMMANDS: dict[str, dict[str, str]] = {
    "doc": {"export": "vault.cli.export", "event": "vault.cli.retention"},
    "dossier": {"export": "vault.cli.export", "update": "vault.cli.maintenance", "history": "vault.cli.maintenance",
                "completeness": "vault.cli.review", "close": "vault.cli.retention", "reopen": "vault.cli.retention"},
}


class LazySubGroup(LocalisedGroup):
    """A group some of whose subcommands live in other modules (``SUBCOMMANDS``), imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(SUBCOMMANDS.get(self.name or "", {}).values())):
            _import(module)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = SUBCOMMANDS.get(self.name or "", {}).get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            _import(module)
        return super().get_command(ctx, cmd_name)


class LazyGroup(LocalisedGroup):
    """A group whose commands in ``COMMANDS`` are imported the first time they are looked up."""

    group_class = LocalisedGroup  # type: ignore[assignment]  # subgroups are plain localised groups

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            load(self, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click's own, but a command not loaded yet is described from the table, not imported.
        rows: list[tuple[str, Any]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name) or localised_command(name, COMMANDS[name][1])
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section(_("Commands")):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


def _import(module: str) -> Any:
    # The import statement's machinery, not importlib.import_module: `python -X importtime` (which
    # the start-up test reads) only sees imports made this way.
    __import__(module)
    return sys.modules[module]


def load(group: click.Group, name: str) -> None:
    """Import the modules of command ``name`` and attach it to ``group``."""
    main, *extensions = COMMANDS[name][0]
    module, attr = main.split(":")
    group.add_command(getattr(_import(module), attr), name)
    for module in extensions:
        _import(module)  # they attach their subcommands to the command on import


def load_all(group: click.Group) -> None:
    """Every command, e.g. to walk the whole tree (documentation, completion checks)."""
    for name in COMMANDS:
        if name not in group.commands:
            load(group, name)
