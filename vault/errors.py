"""The one exception hierarchy of the vault: every error a user can cause is a VaultError."""

from __future__ import annotations

from typing import Any, Callable

from vault.i18n import Message, N_


class VaultError(Exception):
    """Root of every error the vault raises on purpose.

    ``str(err)`` is one line for the user, in English; ``err.hint`` (possibly empty) says what to do
    next. ``err.param`` (possibly None) names the argument at fault, so that a front end can say how to
    give it (the CLI names its option). ``err.code`` is a stable English word for scripts (``--json``
    error output); it never changes with the language. Messages never carry customer data, keys or
    passphrases. Errors carry no exit codes: the CLI chooses them.

    A message is a catalogue id with ``{placeholders}`` filled from the keyword arguments, so a front
    end can show it in the reader's language (``err.render(gettext)``); the placeholders are filled in
    after translation, and a value that is itself a VaultError is rendered in the same language.
    """

    hint = ""
    param: str | None = None
    code = "error"

    def __init__(self, message: str | None = None, /, *, hint: str | None = None, param: str | None = None,
                 code: str | None = None, **params: Any) -> None:
        if message is None:  # VaultError(message="…"), as it could be called before messages had values
            message = str(params.pop("message", ""))
        self.message = Message(message, **params)  # a Message passed on keeps its id and values
        super().__init__(str(self.message))
        if hint is not None:
            # Filled in (a str, in English) like the message; rendered in any language by render_hint.
            self.hint = Message(hint, **params) if hint else ""
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code

    @classmethod
    def from_error(cls, err: VaultError, **kw: Any) -> VaultError:
        """An error of this class saying what ``err`` says (its message, and its hint unless ``hint`` is given)."""
        kw.setdefault("hint", err.__dict__.get("hint"))
        kw.setdefault("param", err.param)
        return cls(err.message.msgid, **kw, **err.message.params)

    def render(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of ``gettext``."""
        return self.message.render(gettext)

    def render_hint(self, gettext: Callable[[str], str]) -> str:
        """The hint in the language of ``gettext`` (it may use the message's placeholders)."""
        if not self.hint:
            return ""
        hint = self.hint if isinstance(self.hint, Message) else Message(self.hint, **self.message.params)
        return hint.render(gettext)


class FormatError(VaultError):
    """Bytes that do not parse: an age header or armor, a manifest, a key string, a config file."""

    code = "format"


class NoIdentityMatchError(VaultError):
    """No recipient stanza of an age header could be unwrapped by the identities given ("not mine")."""

    code = "no-identity-match"
    hint = N_("check that you are using an identity (or passphrase) this file was encrypted to")


class AuthenticationError(VaultError):
    """Authenticated data failed to verify: header MAC, payload chunk, signature, hash.

    One opaque error for every way it can be bad: wrong key, tampered bytes, bad tag.
    """

    code = "authentication"


class UsageError(VaultError):
    """A command was called with arguments that do not make sense (the CLI exits with 2)."""

    code = "usage"


class InputError(VaultError):
    """User input is well-formed but invalid: unknown category, bad date, missing file."""

    code = "input"


class NotFoundError(VaultError):
    """The named vault, member, dossier, document, request or grant does not exist."""

    code = "not-found"


class PermissionDeniedError(VaultError):
    """The acting member's roles do not allow this action, or the keys to do it are not theirs."""

    code = "permission-denied"


class IntegrityError(VaultError):
    """Stored vault data is damaged or tampered with; the message names the file."""

    code = "integrity"


class LockError(VaultError):
    """Another process holds the vault lock."""

    code = "lock"
    hint = N_("another vault command is running; retry when it has finished")


class ConflictError(VaultError):
    """The action conflicts with the vault's state (already exists, held, not yet approved, ...)."""

    code = "conflict"


class PluginError(VaultError):
    """A plugin raised or misbehaved; the message names the plugin."""

    code = "plugin"
