"""The one exception hierarchy of the vault: every error a user can cause is a VaultError."""

from __future__ import annotations


class VaultError(Exception):
    """Root of every error the vault raises on purpose.

    ``str(err)`` is one line for the user; ``err.hint`` (possibly empty) says what to do next.
    ``err.param`` (possibly None) names the argument at fault, so that a front end can say how to
    give it (the CLI names its option). Messages never carry customer data, keys or passphrases.
    Errors carry no exit codes: the CLI chooses them.
    """

    hint = ""
    param: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint
        if param is not None:
            self.param = param


class FormatError(VaultError):
    """Bytes that do not parse: an age header or armor, a manifest, a key string, a config file."""


class NoIdentityMatchError(VaultError):
    """No recipient stanza of an age header could be unwrapped by the identities given ("not mine")."""

    hint = "check that you are using an identity (or passphrase) this file was encrypted to"


class AuthenticationError(VaultError):
    """Authenticated data failed to verify: header MAC, payload chunk, signature, hash.

    One opaque error for every way it can be bad: wrong key, tampered bytes, bad tag.
    """


class UsageError(VaultError):
    """A command was called with arguments that do not make sense (the CLI exits with 2)."""


class InputError(VaultError):
    """User input is well-formed but invalid: unknown category, bad date, missing file."""


class NotFoundError(VaultError):
    """The named vault, member, dossier, document, request or grant does not exist."""


class PermissionDeniedError(VaultError):
    """The acting member's roles do not allow this action, or the keys to do it are not theirs."""


class IntegrityError(VaultError):
    """Stored vault data is damaged or tampered with; the message names the file."""


class LockError(VaultError):
    """Another process holds the vault lock."""

    hint = "another vault command is running; retry when it has finished"


class ConflictError(VaultError):
    """The action conflicts with the vault's state (already exists, held, not yet approved, ...)."""


class PluginError(VaultError):
    """A plugin raised or misbehaved; the message names the plugin."""
