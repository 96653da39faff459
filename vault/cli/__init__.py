"""The ``vault`` command line: a thin skin over the library; every VaultError becomes one line.

This package is the only place that imports ``click``. The group, the shared helpers and the error
handling live here; each area's commands live in their own module and attach to ``cli``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from typing import TYPE_CHECKING

import click

from vault.cli import hints
from vault.cli.labels import cell, field, problems_summary, report_lines, state  # noqa: F401  (the commands' helpers)
from vault.cli.localised import LazyText, bind_click
from vault.cli.shown import Shown, local_time, pad  # noqa: F401  (pad: the commands' import point)
from vault.cli.lazy import LazyGroup
from vault.errors import (ConflictError, FormatError, IntegrityError, InputError, LockError, NoIdentityMatchError,
                          NotFoundError, PermissionDeniedError, PluginError, UsageError, VaultError)
from vault.i18n import N_, _

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault
    from vault.clock import Clock
    from vault.store.identity import MemberKey

# Every error reaches the user with a hint: the library's own when it has one, else this one.
DEFAULT_HINTS: dict[type, str] = {
    UsageError: N_("see 'vault COMMAND --help'"),
    InputError: N_("see 'vault COMMAND --help' for what the command accepts"),
    NotFoundError: N_("check the name or number; the 'list' command of its group shows what exists"),
    PermissionDeniedError: N_("ask a supervisor; roles and their rights are in 'vault policy show'"),
    IntegrityError: N_("run 'vault check' to see every damaged file; restore from a backup if needed"),
    FormatError: N_("the file is damaged or not what was expected; run 'vault check'"),
    ConflictError: N_("see the object's state with its 'show' or 'list' command"),
    NoIdentityMatchError: N_("check --identity and the passphrase"),
    LockError: N_("another vault command is running; retry when it has finished"),
    PluginError: N_("see 'vault plugins list'"),
}


def _english_hint(err: VaultError) -> str:
    if err.param in hints.PARAM_HINTS:
        return hints.PARAM_HINTS[err.param]
    for cls in type(err).__mro__:
        if cls in DEFAULT_HINTS:
            return DEFAULT_HINTS[cls]
    return "run the command again with --help"


# The system's words for the errors a user meets, in the catalogue (the C library speaks English here:
# the vault never sets a locale).
_OS_ERRORS = {
    errno.ENOENT: N_("No such file or directory"), errno.EACCES: N_("Permission denied"),
    errno.EPERM: N_("Operation not permitted"), errno.ENOSPC: N_("No space left on device"),
    errno.EEXIST: N_("File exists"), errno.EISDIR: N_("Is a directory"), errno.ENOTDIR: N_("Not a directory"),
    errno.EROFS: N_("Read-only file system"), errno.ENAMETOOLONG: N_("File name too long"),
    errno.EDQUOT: N_("Disk quota exceeded"), errno.EIO: N_("Input/output error"),
}


def hint_for(err: VaultError) -> str:
    """The hint shown under an error: the error's own, else the one for its class."""
    if err.hint:
        return err.render_hint(_)
    for cls in type(err).__mro__:
        if cls in DEFAULT_HINTS:
            return _(DEFAULT_HINTS[cls])
    return _("run the command again with --help")


class Ctx(Shown):
    """What the group hands to every command on ``ctx.obj``."""

    def __init__(self, vault_dir: str | None, identity_file: str | None, tz: str | None = None,
                 clock: Clock | None = None) -> None:
        from vault.clock import Clock

        self.vault_dir = vault_dir
        self.identity_file = identity_file
        self.tz = tz
        #: The time the command runs at: the machine's (the library never reads it by itself).
        self.clock = clock or Clock()
        self._vault: Vault | None = None
        self._members: dict[str, str | None] | None = None

    @property
    def vault(self) -> Vault:
        from vault.archive.vault import Vault

        if self._vault is None:
            if not self.vault_dir:
                raise InputError(N_("no vault given"), hint=N_("pass --vault DIR or set VAULT_DIR"))
            self._vault = Vault.open(Path(self.vault_dir), clock=self.clock)
            if self.tz is None:  # the office's zone, unless --tz says otherwise
                self._office_zone(self._vault)
        return self._vault

    @staticmethod
    def _office_zone(v: Vault) -> None:
        from vault import clock

        try:
            # Only the policy the history accepted: a time zone put into policy.toml by hand would
            # move "today", and with it the dates the vault records.
            key = v.policy.data.get("time_zone")
        except (VaultError, OSError):
            return  # a damaged history: the command itself reports it (check, audit verify)
        if key:
            clock.use_zone(clock.zone(key))

    def actor(self) -> Actor:
        return self.vault.act_as(self.member_key())

    def member_key(self, missing: str = N_("this command needs your identity")) -> MemberKey:
        """The running agent when it holds the identity asked for (or any, when none is asked for);
        else the identity file, unlocked with the passphrase."""
        from vault.store import identity
        from vault.agent import client

        held = client.identity_for(self.identity_file)
        if held is not None:
            return held
        if not self.identity_file:
            raise InputError(missing, hint=N_("pass --identity FILE or set VAULT_IDENTITY"))
        path = Path(self.identity_file)
        if not path.is_file():
            raise InputError(N_("identity file {path} not found"), hint=N_("pass --identity FILE or set VAULT_IDENTITY"), path=path)
        return identity.load_identity(path, _passphrase(_("Passphrase for {name}").format(name=path.name)))

    def maybe_actor(self) -> Actor | None:
        """The acting member when an identity is given (to open sealed texts), else None."""
        return self.actor() if self.identity_file else None


def current() -> Ctx:
    """The running command's ``Ctx`` (for formatters that are not handed one)."""
    obj = click.get_current_context().find_object(Ctx)
    assert obj is not None  # every command runs under the vault group
    return obj


def _passphrase(prompt: str, *, confirm: bool = False) -> str:
    from vault.store import identity

    p = identity.passphrase_from_env()
    if p is not None:
        return p
    if not sys.stdin.isatty():
        raise InputError(N_("no passphrase available"), hint=N_("run on a terminal, or set VAULT_PASSPHRASE_FILE"))
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | str) -> None:
    """Print ``data`` as JSON or as human text."""
    if as_json:
        from vault.archive.vault import dumps_json

        click.echo(dumps_json(data))
    else:
        click.echo(text(data) if callable(text) else text)


def render(value: Any, indent: str = "") -> str:
    """Human text for nested data: ``key: value`` lines, lists as ``- item`` lines; never a Python repr.
    Names are shown as people write them and times in the office's zone."""
    if not indent:
        ctx = click.get_current_context(silent=True)
        obj = ctx.find_object(Ctx) if ctx is not None else None
        if obj is not None:
            value = obj.humane(value)
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{indent}{field(k)}:")
                lines.append(render(v, indent + "  "))
            else:
                lines.append(f"{indent}{field(k)}: {_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                first, *rest = render(item, indent + "  ").split("\n")
                lines.append(f"{indent}- {first.lstrip()}")
                lines.extend(rest)
            else:
                lines.append(f"{indent}- {_scalar(item)}")
    else:
        lines.append(f"{indent}{_scalar(value)}")
    return "\n".join(lines)


def _scalar(v: Any) -> str:
    if v is None or v == [] or v == {}:
        return "-"
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    if isinstance(v, str):
        return local_time(v)
    return str(v)


@contextlib.contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar of ``total`` bytes on a terminal (stderr); silent when piped or under --json."""
    from vault.cli.progress import bar

    with bar(total, label) as step:
        yield step


@contextlib.contextmanager
def bars(label: str) -> Iterator[Callable[[int], Callable[[int], None]]]:
    """For library calls that report progress (``vault.store.counting.Progress``): a bar per call, on a
    terminal only, closed when the block ends."""
    from vault.cli.progress import factory

    with contextlib.ExitStack() as stack:
        yield factory(stack, label)


def _note_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["vault.json"] = True  # shared by every context: the error handler answers in JSON too
    return value


json_opt = click.option("--json", "as_json", is_flag=True, callback=_note_json, help="Print JSON instead of text.")


#: Longest argument accepted: a value this long is a mistake or an attack, and would otherwise be
#: echoed into error messages or written into records.
MAX_ARGUMENT = 64 * 1024


def one_line(text: str, limit: int = 400) -> str:
    """``text`` safe to print as one line: control characters and undecodable bytes escaped, cut short.

    Error messages quote user input (paths, numbers); a newline in it must not forge a second
    ``vault:`` line, and a surrogate-escaped byte must not crash the writer.
    """
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def check_arguments(values: list[Any], *, argv: bool = False) -> None:
    """Refuse what no command can use: NUL bytes, bytes that are not UTF-8, values over MAX_ARGUMENT,
    and (on the command line) empty values, which would otherwise pass for "not given"."""
    for v in values:
        if not isinstance(v, str):
            continue
        if argv and not v:
            raise InputError(N_("an argument is empty"), hint=N_("leave out an option you do not want to set"))
        if "\x00" in v:
            raise InputError(N_("an argument contains a NUL byte"), hint=N_("check the command line"))
        if len(v) > MAX_ARGUMENT:
            raise InputError(N_("an argument is longer than {MAX_ARGUMENT} characters"), hint=N_("check the command line"), MAX_ARGUMENT=MAX_ARGUMENT)
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            # Linux hands undecodable argv bytes over as lone surrogates; records are UTF-8.
            raise InputError(N_("argument {v!r} is not valid UTF-8"),
                             hint=N_("use UTF-8 text; rename a file whose name is not UTF-8"), v=one_line(v, 60)) from None


def _say(message: str, hint: str = "") -> None:
    click.echo(_("vault: error: {message}").format(message=one_line(message)), err=True)
    if hint:
        click.echo(_("vault: hint: {hint}").format(hint=one_line(hint)), err=True)


def _say_json(ctx: click.Context, err: VaultError, hint: str) -> None:
    """Under ``--json`` an error is also a JSON object on standard output, in English whatever the language."""
    if ctx.meta.get("vault.json"):
        from vault.archive.vault import dumps_json

        click.echo(dumps_json({"error": {"code": err.code, "message": str(err),
                                         "hint": err.render_hint(str) if err.hint else hint}}))


class _Reported(click.ClickException):
    """A usage error found while parsing the top-level options, shown in the vault's one-line form."""

    def __init__(self, message: str, hint: str, exit_code: int) -> None:
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class; this error chooses its own

    def show(self, file: Any = None) -> None:
        _say(self.message, self.hint)


#: Options of the ``vault`` group itself; given after a command, they get a hint saying where they go.
GLOBAL_OPTIONS = ("--vault", "--identity", "--tz")


def _usage_hint(e: click.ClickException) -> str:
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click.NoSuchOption) and e.option_name in GLOBAL_OPTIONS:
        return _("{option} is a global option: put it before the command (vault {option} … COMMAND)").format(
            option=e.option_name)
    return (_("see '{command} --help'").format(command=ctx.command_path) if ctx is not None
            else _("see 'vault --help'"))


class ArchiveNumber(click.ParamType):
    """An archive or document number as typed: matched case-insensitively against the issued numbers."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        obj = ctx.find_object(Ctx) if ctx is not None else None
        if obj is None or not isinstance(value, str) or not obj.vault_dir:
            return value
        from vault.archive.manifests import canonical_number

        try:
            return canonical_number(obj.vault, value)
        except (VaultError, OSError, ValueError):
            return value  # the command itself reports a bad vault or number, with its hint


NUMBER = ArchiveNumber()


def help_width() -> int:
    """The width click gives help text (the terminal's, at most 78 and at least 50), worked out as
    ``shutil.get_terminal_size`` does: click would import shutil (and with it the bz2 and lzma
    modules) for that alone, a few milliseconds of every ``--help``."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, 80) - 2, 50)


class VaultGroup(LazyGroup):
    """Turns library errors into one clear line (and a hint) with the right exit code."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            check_arguments(list(args), argv=True)
            if parent is None:
                extra.setdefault("terminal_width", help_width())
            return super().make_context(info_name, args, parent=parent, **extra)
        except VaultError as e:
            raise _Reported(hints.message(e), hints.hint(e) or hint_for(e), hints.exit_code(e)) from None
        except click.ClickException as e:
            raise _Reported(e.format_message(), _usage_hint(e), e.exit_code) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            check_arguments(list(ctx.params.values()))  # values from the environment (VAULT_DIR, ...)
            return super().invoke(ctx)
        except VaultError as e:
            _say(hints.message(e), hints.hint(e) or hint_for(e))
            _say_json(ctx, e, _english_hint(e))
            ctx.exit(hints.exit_code(e))
        except click.ClickException as e:
            _say(e.format_message(), _usage_hint(e))
            if ctx.meta.get("vault.json"):
                from vault.archive.vault import dumps_json

                # click words its message in the reader's language, and --json is the same in every
                # language: the code says what went wrong, the text is on standard error.
                click.echo(dumps_json({"error": {"code": "usage", "hint": N_("see the command's --help")}}))
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo(_("vault: interrupted; nothing was changed"), err=True)
            ctx.exit(130)
        except MemoryError:
            # One line, as any other error: what a file or a server sent may be larger than any
            # bound a reader knows of, and a traceback would help no one.
            _say(_("out of memory"), _("free memory or raise this process's limit and run the command again; "
                                       "'vault check' names anything it left half done"))
            ctx.exit(1)
        except OSError as e:
            reason = _(_OS_ERRORS[e.errno]) if e.errno in _OS_ERRORS else (e.strerror or str(e))
            _say(f"{reason}: {e.filename or ''}".rstrip(": "), _("check the path, its permissions and the free space"))
            ctx.exit(1)


@click.group(cls=VaultGroup)
@click.option("--vault", "vault_dir", envvar="VAULT_DIR", type=click.Path(file_okay=False), help="Vault directory (env VAULT_DIR).")
@click.option("--identity", "identity_file", envvar="VAULT_IDENTITY", type=click.Path(dir_okay=False), help="Your identity file (env VAULT_IDENTITY).")
@click.option("--tz", "tz", envvar="VAULT_TZ", help="Time zone to show and read dates in, e.g. Asia/Shanghai "
              "(env VAULT_TZ; default: the policy's time_zone, else the machine's).")
@click.version_option(package_name="vault", message=LazyText(N_("%(prog)s, version %(version)s")))
@click.pass_context
def cli(ctx: click.Context, vault_dir: str | None, identity_file: str | None, tz: str | None) -> None:
    """Keep customer dossiers encrypted and run the archive office's procedure on them."""
    from vault import clock

    # Recorded times are UTC; what people see and type is in the office's zone (vault/clock.py).
    clock.use_zone(clock.zone(tz) if tz else clock.machine_zone())
    # The machine's clock, unless the program that invokes the command line passes its own as the
    # context object (a test seam: nothing a user types or sets reaches it).
    ctx.obj = Ctx(vault_dir, identity_file, tz, ctx.obj if isinstance(ctx.obj, clock.Clock) else None)


bind_click()


def main() -> None:
    """Console-script entry point."""

    os.umask(0o077)  # nothing the vault writes is for other users
    cli(prog_name="vault")
