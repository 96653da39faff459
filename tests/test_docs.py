"""docs/PLUGINS.md documents every hook, each under a heading that is the hook's exact signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from vault import hookspecs

PLUGINS_MD = Path(__file__).parent.parent / "docs" / "PLUGINS.md"
HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("vault_"))


def documented_signatures() -> dict[str, str]:
    """Hook name -> the signature written in its ``## `name(...)` `` heading."""
    headings = re.findall(r"^## `(vault_\w+)(\(.*\))`$", PLUGINS_MD.read_text(), flags=re.MULTILINE)
    return dict(headings)


def real_signature(name: str) -> str:
    """The spec's signature as a plugin author writes it: parameter names, no annotations."""
    sig = inspect.signature(getattr(hookspecs, name))
    bare = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=bare, return_annotation=inspect.Signature.empty))


def test_hookspecs_exist():
    assert len(HOOKS) >= 6


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_are_documented(hook):
    documented = documented_signatures()
    assert hook in documented, f"docs/PLUGINS.md has no section headed ## `{hook}{real_signature(hook)}`"
    assert documented[hook] == real_signature(hook), (
        f"docs/PLUGINS.md documents {hook}{documented[hook]}, the spec is {hook}{real_signature(hook)}")


def test_no_section_for_a_hook_that_does_not_exist():
    assert set(documented_signatures()) <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_docstrings_give_params_and_return(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    for param in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f":param {param}:" in doc, f"{hook} does not document :param {param}:"
    assert ":return:" in doc, f"{hook} does not document :return:"
