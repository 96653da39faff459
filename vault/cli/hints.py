"""How the CLI reports a library error: its exit code, and hints that name the command line's options."""

from __future__ import annotations

from vault.errors import UsageError, VaultError
from vault.i18n import N_, _

#: Exit codes by error class (the most specific class wins); every other VaultError exits with 1.
EXIT_CODES: dict[type[VaultError], int] = {UsageError: 2}

#: The library names the input at fault (``VaultError.param``); the CLI says which option gives it.
PARAM_HINTS: dict[str, str] = {
    "source": N_("pass --source TEXT"),
    "copy_note": N_("pass --copy-note TEXT, or --original"),
    "copy_export": N_("to get a copy, file 'vault request copy DOCNO --purpose …' and use 'vault doc export'"),
    "purpose": N_("pass --purpose TEXT"),
    "reason": N_("pass --reason TEXT"),
    "changes": N_("pass --name, --address, --contact, --legal-rep, --business or --note"),
    "outcome": N_("use --verified or --needs-update"),
    "note": N_("pass --note TEXT"),
    "name": N_("pass --name"),
    "query": N_("pass --name, --contact or --number"),
    "out": N_("choose another --out path; identities are never overwritten"),
    "identity": N_("pass --identity FILE or set VAULT_IDENTITY"),
    "blind_index": N_("finding by name or contact is for the archive department; try --number"),
    "keep": N_("pass at least one of --keep-daily/--keep-weekly/--keep-monthly/--keep-yearly N"),
    "role": N_("pass --role ROLE"),
    "access_request": N_("file 'vault request access NO --purpose …'; your department head approves, the archive grants"),
    "copy_request": N_("file 'vault request copy DOCNO --purpose …'; the archive head approves it"),
    "vault": N_("pass --vault DIR (or set VAULT_DIR), or create one with 'vault init'"),
    "member_identity": N_("check --identity and --vault"),
    "request_target": N_("'vault request access NO …' or 'vault request access --customer NAME …'"),
}

#: Library messages that begin with the name of an input the command line takes as an option.
OPTION_MESSAGES = frozenset({"hours", "replaces"})


def exit_code(err: VaultError) -> int:
    """The exit code for ``err``."""
    for cls in type(err).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def message(err: VaultError) -> str:
    """The error line for ``err`` in the reader's language, naming the option where the library names its input."""
    text = err.render(_)
    if err.param in OPTION_MESSAGES and text.startswith(err.param):
        return "--" + text
    return text


def hint(err: VaultError) -> str:
    """The hint for ``err``: the library's own, else how to give the input at fault."""
    if err.hint:
        return err.render_hint(_)
    return _(PARAM_HINTS[err.param]) if err.param in PARAM_HINTS else ""
