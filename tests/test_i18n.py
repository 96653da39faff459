"""Languages: Simplified Chinese first, English second; catalogues complete, compiled and in step with the code."""

from __future__ import annotations

import datetime as dt
import gettext
import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from vault import i18n

REPO = Path(__file__).resolve().parent.parent
LOCALE = REPO / "vault" / "locale"
CATALOGUED = [lang for lang in i18n.LANGUAGES if lang != "en"]  # English is the source language


def _po(lang: str):
    with open(LOCALE / lang / "LC_MESSAGES" / "vault.po", "rb") as f:
        return read_po(f, locale=lang)


def _extracted() -> set[str]:
    """Every message in the code, found as ``dev/i18n update`` finds them (the same ``babel.cfg``)."""
    with open(REPO / "babel.cfg") as f:
        method_map, options = parse_mapping_cfg(f)
    found = set()
    for where in ("vault", "plugins"):  # the package and the built-in plugins
        for _, _, message, _, context in extract_from_dir(REPO / where, method_map, options):
            msgid = message if isinstance(message, str) else message[0]
            found.add(f"{context}\x04{msgid}" if context else msgid)
    return found


_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)(?:![rsa])?(?::[^{}]*)?\}(?!\})|%\((\w+)\)[sd]")


def placeholders(text: str) -> list[str]:
    return sorted(a or b for a, b in _PLACEHOLDER.findall(text))


@pytest.mark.parametrize(("header", "lang"), [
    (None, "zh_Hans"), ("", "zh_Hans"), ("zh-CN,zh;q=0.9", "zh_Hans"), ("zh-TW", "zh_Hans"),
    ("en-US,en;q=0.9", "en"), ("fr-FR, en;q=0.5", "en"), ("de, fr", "zh_Hans"),
    ("en;q=0.3, zh;q=0.8", "zh_Hans"), ("zh;q=0, en", "en"), ("*", "zh_Hans"),
    ("en;q=bogus, zh", "zh_Hans"), ("x" * 5000, "zh_Hans"), (",".join(["de"] * 5000) + ",en", "zh_Hans"),
])
def test_browser_language_choice(header, lang):
    assert i18n.negotiate(i18n.parse_accept_language(header)) == lang


@pytest.mark.parametrize(("env", "lang"), [
    ({}, "zh_Hans"), ({"LANG": "en_US.UTF-8"}, "en"), ({"LANG": "C.UTF-8"}, "zh_Hans"),
    ({"LANG": "en_GB.UTF-8", "LC_ALL": "zh_CN.UTF-8"}, "zh_Hans"), ({"LANGUAGE": "fr:en", "LANG": "zh_CN"}, "en"),
    ({"VAULT_LANG": "zh", "LANGUAGE": "en"}, "zh_Hans"), ({"LC_MESSAGES": "en_US", "LANG": "zh_CN"}, "en"),
])
def test_command_line_language_from_the_environment(env, lang):
    assert i18n.from_environment(env) == lang


@pytest.mark.parametrize("lang", CATALOGUED)
def test_every_message_in_the_code_is_translated(lang):
    cat = _po(lang)
    translated = {(f"{m.context}\x04" if m.context else "") + (m.id if isinstance(m.id, str) else m.id[0]): m
                  for m in cat if m.id}
    missing = _extracted() - set(translated)
    assert not missing, f"run dev/i18n update and translate: {sorted(missing)}"
    for msgid, m in translated.items():
        assert not m.fuzzy, f"fuzzy in {lang}: {msgid!r}"
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(strings), f"untranslated in {lang}: {msgid!r}"


@pytest.mark.parametrize("lang", CATALOGUED)
def test_every_translation_keeps_the_placeholders_of_its_message(lang):
    """A translation that lost, misspelt or added a {placeholder} would show the wrong value, or none."""
    bad = []
    for m in _po(lang):
        if not m.id or not m.string:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for s in strings:
            if placeholders(s) != placeholders(ids[-1]) and placeholders(s) != placeholders(ids[0]):
                bad.append((ids[0], s))
    assert not bad, bad


def test_the_placeholder_check_sees_a_lost_or_renamed_placeholder():
    assert placeholders("no dossier {number} for {name!r}") == ["name", "number"]
    assert placeholders("本卷宗 {number}") != placeholders("no dossier {number} for {name!r}")
    assert placeholders("{{literal}} %(organisation)s") == ["organisation"]


def test_messages_render_in_the_readers_language_and_fall_back_to_english():
    from vault.errors import NotFoundError

    err = NotFoundError("no document {docno}", docno="A-1/D1", hint="see 'vault doc list {number}'", number="A-1")
    assert str(err) == "no document A-1/D1" and err.code == "not-found"
    assert err.render(lambda s: {"no document {docno}": "没有文件 {docno}"}.get(s, s)) == "没有文件 A-1/D1"
    assert err.render_hint(lambda s: s) == "see 'vault doc list A-1'"
    # A translation that names a placeholder the message does not fill shows the English message.
    assert err.render(lambda s: "没有文件 {doc}") == "no document A-1/D1"


@pytest.mark.parametrize("lang", CATALOGUED)
def test_the_committed_mo_is_the_po_compiled(lang):
    """The .mo files are committed (no compile step at install); they must say what the .po says."""
    buf = io.BytesIO()
    write_mo(buf, _po(lang))
    buf.seek(0)
    fresh = gettext.GNUTranslations(buf)
    with open(LOCALE / lang / "LC_MESSAGES" / "vault.mo", "rb") as f:
        shipped = gettext.GNUTranslations(f)
    # The header's dates change with every update; what it says about plurals must not.
    assert shipped.plural(2) == fresh.plural(2) == 0
    drop = {""}
    assert ({k: v for k, v in shipped._catalog.items() if k not in drop}  # type: ignore[attr-defined]
            == {k: v for k, v in fresh._catalog.items() if k not in drop}), "run dev/i18n compile"  # type: ignore[attr-defined]


def test_catalogues_load_from_inside_the_package():
    zh = i18n.gettext_for("zh_Hans")
    assert zh("Submit material") == "提交材料"
    assert i18n.gettext_for("en")("Submit material") == "Submit material"
    with pytest.raises(ValueError):
        i18n.translations("../../etc")


def test_dates_and_sizes_in_the_readers_locale():
    t = dt.datetime(2026, 12, 13, 14, 5, tzinfo=dt.timezone.utc)
    assert i18n.format_datetime(t, "zh_Hans").startswith("2026年12月13日")
    assert i18n.format_datetime(t, "en").startswith("December 13, 2026")
    assert i18n.format_size(200_000_000, "en") == "200 MB"
    assert i18n.format_size(1_234_567, "zh_Hans") == "1.2 MB"
    assert i18n.format_size(999, "en") == "999 bytes" and i18n.format_size(1, "zh_Hans") == "1字节"
    assert i18n.format_number(12345, "en") == "12,345"
