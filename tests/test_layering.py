"""Layering: click only in the CLI, cryptography only in the crypto package, a docstring on every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULES = sorted(p for top in ("vault", "plugins") for p in (REPO / top).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def imported_roots(path: Path) -> set[str]:
    """Top-level package names a module imports, anywhere in it (also inside functions)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def under(path: Path, package: str) -> bool:
    return rel(path).startswith(package + "/")


def test_the_walk_sees_the_packages():
    names = {rel(p) for p in MODULES}
    assert {"vault/cli/__init__.py", "vault/crypto/age.py", "plugins/numbering.py"} <= names


def test_imported_roots_sees_every_import_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('"""Doc."""\nimport click.testing as t\ndef f():\n    from cryptography.hazmat import x\n'
                   "from . import sibling\n")
    assert imported_roots(src) == {"click", "cryptography"}


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_click_only_in_the_cli(path):
    if under(path, "vault/cli"):
        return
    assert "click" not in imported_roots(path), f"{rel(path)} imports click; only vault/cli/ may"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_cryptography_only_in_the_crypto_package(path):
    if under(path, "vault/crypto"):
        return
    assert "cryptography" not in imported_roots(path), f"{rel(path)} imports cryptography; only vault/crypto/ may"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_every_module_opens_with_a_one_line_docstring(path):
    doc = ast.get_docstring(ast.parse(path.read_bytes(), filename=str(path)), clean=False)
    assert doc and doc.strip(), f"{rel(path)} has no module docstring"
    lines = doc.split("\n")
    assert lines[0].strip(), f"{rel(path)}: the docstring's first line is empty (it should be the one-line summary)"
    # PEP 257: the summary is one line; any elaboration comes after a blank line.
    assert len(lines) == 1 or not lines[1].strip(), f"{rel(path)}: the docstring's summary runs past one line"


def test_every_package_ships_in_the_wheel():
    """pyproject lists packages explicitly (plugins/ and schemas/ ship under other names), so a new
    subpackage must be listed too, or an installed vault would lack it."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "vault").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"
