"""Layering: imports only point down the layers, no cycle, click only in the CLI, cryptography only in crypto."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULES = sorted(p for top in ("vault", "plugins") for p in (REPO / top).rglob("*.py"))

#: The layers, lowest first: a module may import from its own layer and the layers below it.
#: ``vault.testing`` (the plugin SDK) stands beside them: it may use any layer but the front ends, and
#: no layer uses it. ``vault.hookspecs`` is the plugin host's public path; ``vault.schemas`` (data) and
#: ``vault.i18n`` (message catalogues) sit at the bottom. The identity agent and the customer portal
#: are front ends beside the CLI. The built-in plugins (``plugins/``, shipped as ``vault_plugins``)
#: see only what a third-party plugin sees.
LAYERS = (("errors", "clock", "schemas", "i18n", "launch", "forked"), ("crypto",), ("store",), ("plugins", "hookspecs"), ("archive",),
          ("backup",), ("office",), ("agent", "portal"), ("cli",))
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
#: The console script: it hands the command to the runner (vault/cli/runner.py) or starts the CLI;
#: it imports nothing of the vault at its top, so any layer may use its helpers.
ENTRY_POINT = "vault.launch"
TESTING_RANK = RANK["office"]
PLUGIN_RANK = RANK["plugins"]


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] == "plugins":
        parts[0] = "vault_plugins"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


KNOWN = {module_name(p) for p in MODULES} | {"vault.schemas"}


@dataclass(frozen=True)
class Import:
    """One ``vault`` import of a module: where it is and what it names."""

    source: str
    target: str
    line: int
    in_function: bool
    type_checking: bool

    def __str__(self) -> str:
        where = " inside a function" if self.in_function else ""
        return f"{self.source} (line {self.line}) imports {self.target}{where}"


def _resolve(module: str, name: str | None) -> str:
    """The module an import names: ``from vault import clock`` imports the module vault.clock."""
    if name and f"{module}.{name}" in KNOWN:
        return f"{module}.{name}"
    return module


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def vault_imports(path: Path) -> list[Import]:
    """Every import of a ``vault`` module in ``path``, marked if it is inside a function or under
    ``if TYPE_CHECKING:``."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    out: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            tc = type_checking or (isinstance(child, ast.If) and _is_type_checking(child))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [_resolve(base, a.name) for a in child.names]
            for t in targets:
                if t.split(".")[0] in ("vault", "vault_plugins"):
                    out.append(Import(source, t, child.lineno, func, tc))
            visit(child, func, tc)

    visit(ast.parse(path.read_bytes(), filename=str(path)), False, False)
    return out


IMPORTS = sorted({imp for p in MODULES for imp in vault_imports(p)}, key=str)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "vault_plugins":
        return "vault_plugins"
    return parts[1] if len(parts) > 1 else "vault"


def layering_problem(imp: Import) -> str | None:
    """Why an import breaks the layering, or None."""
    src, dst = layer_of(imp.source), layer_of(imp.target)
    if imp.source == ENTRY_POINT:
        return None  # like vault.__main__ it starts the CLI, and imports only once it knows it must
    if imp.in_function and src != "cli":
        return f"{imp}: outside vault/cli/ a vault module is imported at the top of the module"
    if imp.type_checking:
        return None  # annotations may name a higher layer's types
    if src in ("vault", "__main__"):
        return None  # the package root and ``python -m vault`` start the CLI
    if dst in ("vault", "vault_plugins", "testing") and src != dst:
        return f"{imp}: no layer imports the package root, the built-in plugins or the SDK"
    if dst == "__main__":
        return f"{imp}: nothing imports vault.__main__"
    ranks = {**RANK, "testing": TESTING_RANK, "vault_plugins": PLUGIN_RANK}
    if src not in ranks or dst not in ranks:
        return f"{imp}: {src if src not in ranks else dst} is in no layer of tests/test_layering.py"
    if ranks[dst] > ranks[src]:
        return f"{imp}: {src} may import only from its own layer and those below it ({' < '.join('/'.join(n) for n in LAYERS)})"
    if src == dst == "office" and imp.source != imp.target and imp.source != "vault.office.check" \
            and imp.target != "vault.office":
        return f"{imp}: office procedures share code through archive/ and store/, not each other"
    return None


def test_the_walk_sees_the_packages():
    names = {rel(p) for p in MODULES}
    assert {"vault/cli/__init__.py", "vault/crypto/age.py", "plugins/numbering.py", "vault/store/__init__.py",
            "vault/archive/vault.py", "vault/office/dossier.py"} <= names


def test_imports_are_read_in_every_form(tmp_path, monkeypatch):
    pkg = tmp_path / "vault" / "office"
    pkg.mkdir(parents=True)
    src = pkg / "m.py"
    src.write_text('"""Doc."""\nfrom typing import TYPE_CHECKING\nimport vault.store.records\n'
                   "from vault import clock\nfrom .sibling import x\n"
                   "if TYPE_CHECKING:\n    from vault.cli import Ctx\n"
                   "def f():\n    from vault.archive import audit\n")
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    found = {(i.target, i.in_function, i.type_checking) for i in vault_imports(src)}
    assert found == {("vault.store.records", False, False), ("vault.clock", False, False),
                     ("vault.office.sibling", False, False), ("vault.cli", False, True),
                     ("vault.archive.audit", True, False)}


@pytest.mark.parametrize(("source", "target", "in_function", "type_checking", "expected"), [
    ("vault.office.dossier", "vault.archive.vault", False, False, None),
    ("vault.archive.vault", "vault.office.intake", False, False, "may import only from its own layer"),
    ("vault.store.records", "vault.crypto.sign", True, False, "inside a function"),
    ("vault.cli.core", "vault.cli.demo", True, False, None),
    ("vault.office.documents", "vault.office.dossier", False, False, "not each other"),
    ("vault.office.check", "vault.office.holds", False, False, None),
    ("vault.archive.vault", "vault.cli", False, True, None),
    ("vault.backup", "vault.testing", False, False, "the SDK"),
    ("vault_plugins.notifiers", "vault.archive.audit", False, False, "may import only"),
])
def test_the_rule_names_the_offending_import(source, target, in_function, type_checking, expected):
    problem = layering_problem(Import(source, target, 7, in_function, type_checking))
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem and f"{source} (line 7) imports {target}" in problem


@pytest.mark.parametrize("imp", IMPORTS, ids=str)
def test_imports_point_down_the_layers(imp):
    problem = layering_problem(imp)
    assert problem is None, problem


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``edges`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := dfs(start)):
            return found
    return None


def test_find_cycle_reports_the_path():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_import_cycle():
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if not imp.type_checking and imp.source != imp.target:
            edges.setdefault(imp.source, set()).add(imp.target)
    cycle = find_cycle(edges)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


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

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "vault").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"
