"""Click's own messages that reach a vault user, listed so that they are in the vault's catalogue.

``localised.bind_click`` sends click's lookups through the vault's catalogue; click's messages are
not in our code, so they are named here for the extractor. Nothing calls ``_catalogue``.
"""

from __future__ import annotations

from vault.i18n import N_, ngettext


def _catalogue() -> None:  # pragma: no cover - read by the message extractor, never run
    N_("Aborted!")
    N_("Options")
    N_("Commands")
    N_("Usage:")
    N_("Missing command.")
    N_("env var: {var}")
    N_("default: {default}")
    N_("required")
    N_("Error: {message}")
    N_("Try '{command} {option}' for help.")
    N_("Invalid value: {message}")
    N_("Invalid value for {param_hint}: {message}")
    N_("Missing argument")
    N_("Missing option")
    N_("Missing parameter")
    N_("Missing {param_type}")
    N_("Missing parameter: {param_name}")
    N_("No such option {name!r}.")
    N_("No such command {name!r}.")
    N_("Could not open file {filename!r}: {message}")
    N_("Option {name!r} does not take a value.")
    N_("Argument {name!r} takes {nargs} values.")
    N_("Choose from:\n\t{choices}")
    N_("{value!r} is not a valid {number_type}.")
    N_("{value} is not in the range {range}.")
    N_("{value!r} is not a valid boolean. Recognized values: {states}")
    N_("file")
    N_("directory")
    N_("path")
    N_("integer")
    N_("float")
    N_("{name} {filename!r} does not exist.")
    N_("{name} {filename!r} is a file.")
    N_("{name} {filename!r} is a directory.")
    N_("{name} {filename!r} is not readable.")
    N_("{name} {filename!r} is not writable.")
    N_("%(prog)s, version %(version)s")
    N_("Show the version and exit.")
    N_("Show this message and exit.")
    N_("Repeat for confirmation")
    N_("Error: The two entered values do not match.")
    N_("Error: invalid input")
    ngettext("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})", 2)
    ngettext("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)", 2)
    ngettext("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments.", 2)
    ngettext("{value!r} is not {choice}.", "{value!r} is not one of {choices}.", 2)
    ngettext("{value!r} does not match the format {format}.", "{value!r} does not match the formats {formats}.", 2)
