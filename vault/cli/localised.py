"""Help in the reader's language: commands, groups and options whose texts are looked up when shown.

Help texts are written in English in the code (docstrings, ``help=``) and collected into the
catalogue by ``vault.i18n.extract_python`` (which ``babel.cfg`` names). They are translated when help
is printed, not when the command is defined, so that one process can show them in any language. Click's
own messages ("Usage:", "Missing option …") go through the same catalogue.
"""

from __future__ import annotations

import click

from vault.i18n import _, help_key, ngettext


def bind_click() -> None:
    """Route click's own messages through the vault's catalogue (click looks ``_`` up at call time)."""
    import click.core
    import click.decorators
    import click.exceptions
    import click.formatting
    import click.parser
    import click.termui
    import click.types

    for module in (click.core, click.decorators, click.exceptions, click.formatting, click.parser, click.termui,
                   click.types):
        if hasattr(module, "_"):
            module._ = _  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext  # type: ignore[attr-defined]


class LazyText(str):
    """A click message filled with ``%`` when shown (``--version``): translated then, not at import."""

    def __mod__(self, values: object) -> str:
        return _(str(self)) % values


def tr_help(text: str | None) -> str | None:
    """A help text (a docstring or ``help=``) in the reader's language."""
    if not text:
        return text
    key = help_key(text)
    out = _(key)
    return out if out != key else key


def short_help(text: str, limit: int) -> str:
    """The first sentence of a help text's first paragraph, cut to ``limit`` columns (CJK counts two)."""
    if all(ord(c) < 0x2E80 for c in text):
        return _words_short_help(text, limit)
    first = text.split("\n\n")[0].replace("\n", " ").strip()
    for stop in ("。", "；"):
        if stop in first:
            first = first.split(stop)[0] + ("。" if stop == "。" else "")
            break
    width = sum(2 if ord(c) > 0x2E80 else 1 for c in first)
    if width <= limit:
        return first
    out, used = "", 0
    for c in first:
        used += 2 if ord(c) > 0x2E80 else 1
        if used > limit - 3:
            break
        out += c
    return out.rstrip() + "..."


def _words_short_help(text: str, limit: int) -> str:
    """As click does it for words: the first sentence if it fits, else whole words and "..."."""
    words = text.split("\n\n")[0].split()
    if words and words[0] == "\b":
        words = words[1:]
    used = 0
    for i, word in enumerate(words):
        used += len(word) + (i > 0)
        if used > limit:
            break
        if word.endswith("."):
            return " ".join(words[: i + 1])
    else:
        return " ".join(words)
    kept: list[str] = []
    for word in words:
        if len(" ".join([*kept, word])) + 3 > limit:
            break
        kept.append(word)
    return " ".join(kept) + "..."


class Localised:
    """Mixin for click commands: help, short help and option help translated when shown."""

    help: str | None
    short_help: str | None
    params: list[click.Parameter]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        saved = [(p, p.help) for p in self.get_params(ctx) if getattr(p, "help", None)]  # type: ignore[attr-defined]
        own = self.help
        try:
            for p, h in saved:
                p.help = tr_help(h)
            self.help = tr_help(own)
            super().format_help(ctx, formatter)  # type: ignore[misc]
        finally:
            self.help = own
            for p, h in saved:
                p.help = h

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help:
            return tr_help(self.short_help) or ""
        text = tr_help(self.help) or ""
        return short_help(text, limit) if text else ""


class LocalisedCommand(Localised, click.Command):
    pass


class LocalisedGroup(Localised, click.Group):
    command_class = LocalisedCommand
    group_class = type  # subgroups are of the same class


def localised_command(name: str, help: str) -> click.Command:
    """A stand-in command that only describes itself (the lazy table's rows)."""
    return LocalisedCommand(name, help=help)

