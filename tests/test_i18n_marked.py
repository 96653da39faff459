"""Every message a user reads is marked for the catalogue: a new English string passed to an error, a
hint, click's errors, ``click.echo`` or the text of ``emit`` without ``_()``/``N_()`` fails here, so
that the extraction test (test_i18n.py) sees it and it gets translated."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import vault.errors
from vault.agent.client import AgentError  # noqa: F401  (registers the subclass)

REPO = Path(__file__).resolve().parent.parent
MARKERS = {"_", "N_", "Message", "ngettext", "pgettext"}
CLICK_ERRORS = {"UsageError", "BadParameter", "ClickException", "FileError"}
_WORD = re.compile(r"[A-Za-z]{3,}")
_PHRASE = re.compile(r"[A-Za-z]{2,}[ ,;:.']+[A-Za-z]{2,}")  # two words: a phrase, not a key or an identifier
# Shell code printed for `eval`, not words for a reader.
ALLOWED = {"VAULT_AGENT_SOCK= {} ; export VAULT_AGENT_SOCK;", "echo  {} ;"}


def _error_names() -> set[str]:
    names, todo = set(), [vault.errors.VaultError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def _text(node: ast.AST) -> str | None:
    """The literal words of a str constant or f-string (placeholders left out), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return " {} ".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def _wordy(node: ast.AST, direct: bool = True) -> bool:
    """Words for a reader: any word in a message argument or an f-string; a phrase in other literals
    (a one-word constant there is a key or an identifier)."""
    t = _text(node)
    if t is None or t in ALLOWED or t.startswith('{"'):  # JSON written by hand is for programs
        return False
    t = re.sub(r"--[a-z-]+|'[^']*'|VAULT_[A-Z_]+", "", t)  # options, quoted commands, variables
    return bool((_WORD if direct or isinstance(node, ast.JoinedStr) else _PHRASE).search(t))


def _unmarked_strings(node: ast.AST) -> list[ast.AST]:
    """Wordy string literals under ``node`` that are not inside a marker call."""
    found, inside = [], set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in MARKERS:
            inside |= {id(x) for x in ast.walk(sub)}
        if isinstance(sub, ast.Subscript):
            inside |= {id(x) for x in ast.walk(sub.slice)}
    for sub in ast.walk(node):
        if id(sub) in inside or not isinstance(sub, (ast.Constant, ast.JoinedStr)):
            continue
        if isinstance(sub, ast.JoinedStr):
            inside |= {id(x) for x in ast.walk(sub) if x is not sub}
        if _wordy(sub, direct=False):
            found.append(sub)
    return found


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


#: Modules whose functions annotated ``-> str | None`` return why an entry counts for nothing: a reason
#: ``vault check`` and ``vault audit verify`` print.
REASONS = ("vault/archive/bindings.py", "vault/archive/authority.py")
#: Lists of what ``check``, ``audit verify`` and ``backup verify`` report.
REPORTED = {"problems", "notes"}


def _reasons(tree: ast.AST) -> list[ast.AST]:
    """The values returned by the reason functions of a ``REASONS`` module."""
    out: list[ast.AST] = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        if fn.returns is not None and ast.unparse(fn.returns).replace(" ", "") == "str|None":
            out += [r.value for r in ast.walk(fn) if isinstance(r, ast.Return) and r.value is not None]
    return out


def _reported(call: ast.Call) -> bool:
    """``problems.append(…)``, ``rep.notes.extend(…)`` and the like."""
    f = call.func
    if not (isinstance(f, ast.Attribute) and f.attr in ("append", "extend")):
        return False
    owner = f.value.id if isinstance(f.value, ast.Name) else f.value.attr if isinstance(f.value, ast.Attribute) else ""
    return owner in REPORTED


def unmarked(path: Path, errors: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cli = "vault/cli/" in path.as_posix()
    out = []
    if path.relative_to(REPO).as_posix() in REASONS:
        for s in _reasons(tree):
            compared = {id(x) for c in ast.walk(s) if isinstance(c, ast.Compare) for x in ast.walk(c)}
            for lit in [s] if _wordy(s) else [x for x in _unmarked_strings(s) if id(x) not in compared]:
                out.append(f"{path.relative_to(REPO)}:{lit.lineno}: {ast.unparse(lit)[:80]}")
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = _call_name(call)
        suspects: list[ast.AST] = []
        if _reported(call):
            suspects += call.args[:1]
        elif name in errors or (cli and name in CLICK_ERRORS):
            suspects += call.args[:1] + [k.value for k in call.keywords if k.arg == "hint"]
        elif cli and name == "echo":
            suspects += call.args[:1]
        elif cli and name == "emit" and len(call.args) >= 3:
            suspects.append(call.args[2])
        for s in suspects:
            direct = [s] if _wordy(s) else []
            for lit in direct + (_unmarked_strings(s) if not direct else []):
                out.append(f"{path.relative_to(REPO)}:{lit.lineno}: {ast.unparse(lit)[:80]}")
    return out


def hidden_in_fstrings(path: Path) -> list[str]:
    """Marker calls inside an f-string: Babel does not look there, so the message would be missing."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            out += [f"{path.relative_to(REPO)}:{c.lineno}: {ast.unparse(c)[:80]}" for c in ast.walk(node)
                    if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in MARKERS]
    return out


def test_every_message_a_user_reads_is_marked_for_the_catalogue():
    errors = _error_names()
    files = sorted((REPO / "vault").rglob("*.py")) + sorted((REPO / "plugins").glob("*.py"))
    found = [hit for f in files for hit in unmarked(f, errors)]
    assert not found, "wrap these in _() (shown now) or N_() (shown later):\n" + "\n".join(found)
    hidden = [hit for f in files for hit in hidden_in_fstrings(f)]
    assert not hidden, "the extractor cannot see a message inside an f-string; move it out:\n" + "\n".join(hidden)


def test_the_check_finds_an_unmarked_message(tmp_path):
    f = REPO / "vault" / "cli" / "_probe_for_test.py"
    try:
        f.write_text('import click\nfrom vault.errors import InputError\n'
                     'def a(n):\n    raise InputError(f"no dossier {n}", hint="see the list")\n'
                     'def b():\n    click.echo("all done")\n'
                     'def c(n):\n    raise InputError(N_("no dossier {n}"), n=n)\n'
                     'def d(r, j):\n    emit(r, j, lambda r: f"closed {r[\'number\']}" + r.get("title", ""))\n'
                     'def e(r, j):\n    emit(r, j, lambda r: _("closed {n}").format(n=r["number"]))\n', encoding="utf-8")
        hits = unmarked(f, _error_names())
    finally:
        f.unlink()
    assert [h.split(":")[1] for h in hits] == ["4", "4", "6", "10"]


def test_the_check_finds_an_unmarked_reason_or_report(tmp_path):
    """A reason a binding returns and a problem or note a verifier reports are read by users too."""
    f = REPO / "vault" / "archive" / "bindings.py"
    probe = REPO / "vault" / "backup" / "_probe_for_test.py"
    try:
        probe.write_text('def a(rep, n, problems):\n    rep.problems.append(f"snapshot {n}: damaged")\n'
                         '    problems.append("index missing")\n    rep.notes.append(Message(N_("fine {n}"), n=n))\n'
                         '    problems.append(str(n))\n', encoding="utf-8")
        hits = unmarked(probe, _error_names())
    finally:
        probe.unlink()
    assert [h.split(":")[1] for h in hits] == ["2", "3"]
    tree = ast.parse('def bind(e, s) -> str | None:\n    if e:\n        return "a member removes themself"\n'
                     '    return None\n\ndef right(e, s) -> str:\n    return "request.approve-copy"\n')
    assert sorted(ast.unparse(x) for x in _reasons(tree)) == ["'a member removes themself'", "None"]
    assert unmarked(f, _error_names()) == []
