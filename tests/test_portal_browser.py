"""The online platform as a customer uses it [R-3.1.2]: Debian's Chromium, JavaScript off, against a real portal.

A customer opens the invitation link, picks files, sends them and sees a receipt; an archivist then
accepts the submissions with the CLI and reads back the exact bytes. Nothing readable may be left on
the portal's side. Screenshots of every page in both languages go to tests/screenshots/.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path

import pytest

from office import MARKERS
from portal_helpers import ORG, invite, portal_office, start_portal

from playwright import sync_api as playwright_api  # a test extra; dev/setup installs it (no browser download)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SHOTS = Path(__file__).parent / "screenshots"
NOTE = "请上传2025年的服务合同 / please upload the 2025 service contract"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: run dev/setup (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("portal-browser")
    started = time.time()
    with pytest.MonkeyPatch.context() as mp:
        o = portal_office(root, mp)
        portal = start_portal(o.vault_dir, root)
        try:
            yield o, portal, root, started
        finally:
            portal.stop()


def page_in(browser, lang: str, *, phone: bool = False):
    """A page in a fresh context: Chinese or English browser, JavaScript off (the portal must not need it)."""
    ctx = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US", java_script_enabled=False,
                              **({"viewport": {"width": 390, "height": 844}, "is_mobile": True} if phone else {}))
    return ctx.new_page()


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_customer_submits_and_the_archivist_reads_back_the_exact_bytes(browser, world, tmp_path):
    o, portal, root, started = world
    inv = invite(o, portal.base, "--note", NOTE, "--uses", "1")
    # Markers unique to this run, so that nothing else on the machine can be mistaken for a leak.
    content, minutes = f"{MARKERS['content']}-{secrets.token_hex(8)}", f"{MARKERS['legal_rep']} {secrets.token_hex(8)}"
    files = {
        "合同-contract.pdf": b"%PDF-1.4\n" + content.encode() + os.urandom(200_000),
        "minutes.txt": ("meeting minutes " + minutes + "\n").encode() * 50,
        "empty.bin": b"",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    page = page_in(browser, "zh")
    resp = page.goto(inv["link"])
    assert resp.status == 200
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert "提交材料" in page.locator("h1").inner_text()
    assert ORG in page.inner_text("header") and o.number in page.inner_text("main")
    assert NOTE in page.inner_text(".note")  # the sealed note, opened with the token
    assert page.locator("script").count() == 0
    shot(page, "invitation.zh")

    page.select_option("#c1", "contract")
    page.fill("#d1", "2025-03-01")
    page.check("input[name=o1]")
    page.set_input_files("#f1", str(tmp_path / "合同-contract.pdf"))
    page.select_option("#c2", "communication")
    page.fill("#d2", "2025-04-02")
    page.set_input_files("#f2", str(tmp_path / "minutes.txt"))
    page.set_input_files("#f3", str(tmp_path / "empty.bin"))
    with page.expect_navigation():
        page.click("button[type=submit]")
    receipt = page.locator("#receipt").inner_text().strip()
    assert len(receipt) == 14 and receipt.count("-") == 2
    body = page.inner_text("main")
    assert "谢谢" in body and "合同-contract.pdf" in body and "minutes.txt" in body and "empty.bin" in body
    shot(page, "receipt.zh")

    # The archivist: the list shows the receipt and the invitation; accepting files each as a document.
    rows = o.json("intake", "list", who="bob")
    assert len(rows) == 3 and {r["receipt"] for r in rows} == {receipt}
    assert {r["invitation"] for r in rows} == {inv["id"]} and {r["for"] for r in rows} == {o.number}
    by_category = {r["category"]: r for r in rows}
    assert by_category["contract"]["original"] is True and by_category["contract"]["date"] == "2025-03-01"
    assert by_category["communication"]["original"] is False
    numbers = [o.json("intake", "accept", r["id"], who="bob")["number"] for r in rows]
    docs = {d["title"]: d for d in o.json("doc", "list", o.number, who="bob")}
    assert set(docs) == set(files)
    for name, data in files.items():
        out = tmp_path / f"back-{len(data)}"
        o.run("doc", "view", docs[name]["number"], "--output", str(out), who="bob")
        assert out.read_bytes() == data, name
    assert len(numbers) == 3
    assert o.json("check", "--read-data", who="bob")["ok"]

    # Nothing readable on the portal's side: its working and temporary directories, the system
    # temporary directory and the vault hold none of the customer's bytes or file names.
    needles = [content.encode(), minutes.encode(), NOTE.encode(),
               "合同-contract".encode(), inv["link"].rsplit("/", 1)[1].encode()]
    scanned = 0
    system_tmp = Path(tempfile.gettempdir())
    for top in (portal.workdir, portal.tmpdir, o.vault_dir, system_tmp):
        for p in _files(top, since=started if top == system_tmp else 0):
            try:
                data = p.read_bytes()
            except OSError:
                continue  # another process's file, gone
            scanned += 1
            for n in needles:
                assert n not in data, f"{n[:20]!r} found in {p}"
    assert scanned > 10
    log = portal.log.read_text(errors="replace")
    assert inv["link"].rsplit("/", 1)[1] not in log and "GET /i/" in log  # the access log redacts the token


def _files(top: Path, *, since: float):
    """Regular files under ``top`` changed since ``since``. Under the system temporary directory the
    test's own files (pytest's tree, where the customer's originals sit) and the browser's profile
    are the customer's side, not the portal's, and are skipped."""
    for dirpath, dirnames, filenames in os.walk(top, onerror=lambda e: None):
        if Path(dirpath) == top and since:
            dirnames[:] = [d for d in dirnames if not d.startswith(("pytest-of-", "playwright", ".org.chromium"))]
        for f in filenames:
            p = Path(dirpath) / f
            try:
                if not p.is_symlink() and p.is_file() and p.stat().st_mtime >= since:
                    yield p
            except OSError:
                continue


def test_english_pages_and_the_language_switch(browser, world, tmp_path):
    o, portal, root, _ = world
    inv = invite(o, portal.base, "--note", NOTE)
    page = page_in(browser, "en")
    page.goto(inv["link"])
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Submit material" in page.locator("h1").inner_text()
    assert "This link works until" in page.inner_text("main")
    shot(page, "invitation.en")
    page.click("a.switch")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.click("a.switch")
    assert page.locator("html").get_attribute("lang") == "en"
    f = tmp_path / "feedback.txt"
    f.write_bytes(b"thank you " + MARKERS["phone"].encode())
    page.set_input_files("#f1", str(f))
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "we have received your material" in page.inner_text("h1")
    assert page.locator("html").get_attribute("lang") == "en"  # the choice survives the form
    shot(page, "receipt.en")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_refusal_pages_are_clear_in_both_languages(browser, world, lang):
    o, portal, root, _ = world
    page = page_in(browser, lang)
    inv = invite(o, portal.base)
    iid, token = inv["link"].rsplit("/", 2)[1:]
    wrong = f"{portal.base}/i/{iid}/{'A' * 43}"
    r = page.goto(wrong)
    assert r.status == 404
    assert ("此链接无效" if lang == "zh" else "This link is not valid") in page.inner_text("h1")
    shot(page, f"invalid.{lang}")
    r = page.goto(portal.base + "/")
    assert r.status == 200
    shot(page, f"home.{lang}")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_used_link_says_so(browser, world, tmp_path, lang):
    o, portal, root, _ = world
    inv = invite(o, portal.base)
    page = page_in(browser, lang)
    page.goto(inv["link"])
    f = tmp_path / "a.txt"
    f.write_bytes(b"a")
    page.set_input_files("#f1", str(f))
    with page.expect_navigation():
        page.click("button[type=submit]")
    r = page.goto(inv["link"])
    assert r.status == 410
    assert ("已使用过" if lang == "zh" else "already been used") in page.inner_text("h1")
    shot(page, f"used.{lang}")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_readable_on_a_phone(browser, world, lang):
    o, portal, root, _ = world
    inv = invite(o, portal.base, "--note", NOTE)
    page = page_in(browser, lang, phone=True)
    page.goto(inv["link"])
    box = page.locator("button[type=submit]").bounding_box()
    assert box and box["width"] <= 390  # the form fits the screen: nothing to scroll sideways for
    assert page.locator("fieldset").first.bounding_box()["width"] <= 390
    shot(page, f"phone.invitation.{lang}")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_expired_link_says_so(browser, world, lang):
    import datetime as dt

    o, portal, root, _ = world
    o.at(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2))
    try:
        inv = invite(o, portal.base, "--expires", "1d")  # issued two days ago, for a day
    finally:
        o.clock.set(None)  # the machine's time again, as the portal has
    page = page_in(browser, lang)
    r = page.goto(inv["link"])
    assert r.status == 410
    assert ("此链接已过期" if lang == "zh" else "This link has expired") in page.inner_text("h1")
    assert ORG in page.inner_text("main")  # whom to ask for a new one
    shot(page, f"expired.{lang}")
