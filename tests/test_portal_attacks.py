"""A hostile web client against the portal [R-3.1.2]: wrong, expired and used links, oversized and cut
uploads, path-like file names, rate and concurrency limits, headers; and a portal host that holds no key."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import re
import select
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from office import MARKERS
from portal_helpers import invite, portal_office, start_portal

LIMITS = ["--max-file-mb", "1", "--max-submission-mb", "2", "--max-files", "3", "--max-uploads", "2",
          "--rate-limit", "12/600", "--idle-timeout", "2", "--min-upload-rate", "1/3",
          "--header-timeout", "3"]
HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("portal-attacks")
    with pytest.MonkeyPatch.context() as mp:
        o = portal_office(root, mp)
        portal = start_portal(o.vault_dir, root, *LIMITS)
        try:
            yield o, portal
        finally:
            portal.stop()


def _path(link: str) -> str:
    return urlsplit(link).path


def _posting(portal, link: str, headers: dict[str, str], *, timeout: float = 10) -> socket.socket:
    """A raw connection to the portal that has sent a POST's request line and ``headers`` and none of
    its body: each attack below then sends as much or as little of the body as it likes."""
    u = urlsplit(portal.base)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    s.sendall(f"POST {_path(link)} HTTP/1.1\r\nHost: x\r\n".encode()
              + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n")
    return s


def request(portal, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    u = urlsplit(portal.base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data.decode("utf-8", "replace")


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> tuple[bytes, dict]:
    """A multipart/form-data body: (field name, file name or None, bytes)."""
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        ctype = "Content-Type: text/html\r\n" if filename else ""  # a lie the portal must not care about
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n{ctype}\r\n".encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def form(*files: tuple[str, bytes], category: str = "feedback", date: str = "2026-04-01") -> tuple[bytes, dict]:
    parts = []
    for i, (name, data) in enumerate(files, 1):
        parts += [(f"c{i}", None, category.encode()), (f"d{i}", None, date.encode()), (f"f{i}", name, data)]
    return multipart(parts)


def _eventually(cond, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def pending(o) -> list[dict]:
    return o.json("intake", "list", who="bob")


def leftovers(o) -> list[str]:
    d = o.vault_dir / "intake"
    return sorted(p.name for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def test_wrong_token_and_unknown_link_get_the_same_page(world):
    o, portal = world
    inv = invite(o, portal.base)
    iid = inv["id"]
    r1, wrong = request(portal, "GET", f"/i/{iid}/{'A' * 43}")
    r2, unknown = request(portal, "GET", f"/i/{'0' * 32}/{'A' * 43}")
    r3, garbage = request(portal, "GET", "/i/..%2F..%2Fvault.toml/x")
    assert r1.status == r2.status == r3.status == 404
    # Nothing tells a guesser which part was wrong (the language switch links back to the path asked for).
    same = [re.sub(r'href="/i/[^"]*"', "", p) for p in (wrong, unknown)]
    assert same[0] == same[1]
    assert "vault-member" not in garbage and "intake_recipient" not in garbage  # a path, never a file
    r, _ = request(portal, "POST", f"/i/{iid}/{'A' * 43}", *form(("a.txt", b"x")))
    assert r.status == 404 and pending(o) == []


def test_expired_link_is_refused_with_a_clear_page(world):
    o, portal = world
    o.at(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))
    try:
        inv = invite(o, portal.base, "--expires", "1h")
    finally:
        o.clock.set(None)  # the machine's time again, as the portal has
    r, page = request(portal, "GET", _path(inv["link"]), headers={"Accept-Language": "en"})
    assert r.status == 410 and "This link has expired" in page
    r, page = request(portal, "POST", _path(inv["link"]), *form(("a.txt", b"x")))
    assert r.status == 410 and pending(o) == []


def test_a_used_link_takes_no_second_submission(world):
    o, portal = world
    inv = invite(o, portal.base, "--uses", "1")
    r, page = request(portal, "POST", _path(inv["link"]), *form(("one.txt", b"first")))
    assert r.status == 200 and "receipt" in page
    r, page = request(portal, "POST", _path(inv["link"]), *form(("two.txt", b"second")))
    assert r.status == 410
    r, page = request(portal, "GET", _path(inv["link"]), headers={"Accept-Language": "zh-CN"})
    assert r.status == 410 and "此链接已使用过" in page
    assert [x["invitation"] for x in pending(o) if x.get("invitation") == inv["id"]] == [inv["id"]]
    rows = {r["id"]: r for r in o.json("intake", "invitations", who="bob")}
    assert rows[inv["id"]]["state"] == "used" and rows[inv["id"]]["used"] == 1


def test_a_declared_content_length_over_the_limit_is_refused_before_the_body(world):
    o, portal = world
    inv = invite(o, portal.base)
    with _posting(portal, inv["link"], {"Content-Length": str(10**12),
                                         "Content-Type": "multipart/form-data; boundary=b"}) as s:
        answer = s.recv(65536).decode("utf-8", "replace")  # answered with no body sent at all
    assert answer.startswith("HTTP/1.1 413")
    r, _ = request(portal, "GET", _path(inv["link"]))
    assert r.status == 200  # the link is still usable: the refusal took no use


def test_a_file_over_the_limit_leaves_nothing(world):
    o, portal = world
    inv = invite(o, portal.base)
    big = MARKERS["content"].encode() * (1_100_000 // len(MARKERS["content"]))
    r, page = request(portal, "POST", _path(inv["link"]), *form(("ok.txt", b"small"), ("big.bin", big)))
    assert r.status == 413
    assert leftovers(o) == [] or all(x.endswith(".toml") or x.endswith(".age") for x in leftovers(o))
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))  # not even the small file
    assert not any(n.startswith(".upload-") for n in leftovers(o))
    r, _ = request(portal, "GET", _path(inv["link"]))
    assert r.status == 200  # the use was given back


def test_a_chunked_body_over_the_submission_limit_is_cut_off(world):
    o, portal = world
    inv = invite(o, portal.base)
    head = "--b\r\nContent-Disposition: form-data; name=\"f1\"; filename=\"x\"\r\n\r\n".encode()
    with _posting(portal, inv["link"], {"Transfer-Encoding": "chunked",
                                         "Content-Type": "multipart/form-data; boundary=b"}, timeout=30) as s:
        answer = b""
        try:
            for i in range(40):  # 40 x 100 kB = 4 MB, twice the limit, with no Content-Length
                chunk = (head if i == 0 else b"") + b"z" * 100_000
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:
            pass  # the server may stop reading and answer early
        s.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer and (data := s.recv(65536)):
                answer += data
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 413")
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))
    assert not any(n.startswith(".upload-") for n in leftovers(o))


def test_a_cut_upload_leaves_nothing_an_archivist_could_mistake_for_a_submission(world):
    o, portal = world
    inv = invite(o, portal.base)
    body, headers = form(("cut.txt", MARKERS["content"].encode() * 20000))
    with _posting(portal, inv["link"], {"Content-Length": str(len(body)), "Content-Type": headers["Content-Type"]}) as s:
        s.sendall(body[: len(body) // 2])
        time.sleep(0.5)  # the portal is mid-file, its ciphertext on disk
        assert any(n.startswith(".upload-") for n in leftovers(o))
    deadline = time.monotonic() + 10
    while any(n.startswith(".upload-") for n in leftovers(o)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(n.startswith(".upload-") for n in leftovers(o)), "partial ciphertext left behind"
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))
    r, page = request(portal, "GET", _path(inv["link"]), headers={"Accept-Language": "en"})
    assert r.status == 200 and "1 more time" in page  # the use was given back


def test_a_client_that_stalls_mid_upload_is_cut_off_and_frees_its_slot(world):
    o, portal = world
    inv = invite(o, portal.base)
    body, headers = form(("slow.txt", MARKERS["content"].encode() * 20000))
    with _posting(portal, inv["link"], {"Content-Length": str(len(body)), "Content-Type": headers["Content-Type"]}) as s:
        s.sendall(body[:300_000])
        assert _eventually(lambda: any(n.startswith(".upload-") for n in leftovers(o)), 5)
        # The connection stays open and silent past --idle-timeout 2.
        assert _eventually(lambda: not any(n.startswith(".upload-") for n in leftovers(o)), 15)
        assert not any(n.startswith(".upload-") for n in leftovers(o)), "a stalled upload kept its ciphertext"
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))
    r, _ = request(portal, "POST", _path(inv["link"]), *form(("ok.txt", b"ok")))
    assert r.status == 200  # the use was given back and the slot freed


def test_a_body_without_its_closing_boundary_is_not_filed(world):
    o, portal = world
    inv = invite(o, portal.base)
    body, headers = form(("a.txt", b"hello"))
    cut = body[: body.rindex(b"--b0undary--")]  # a complete-looking request that never ends its form
    r, _ = request(portal, "POST", _path(inv["link"]), cut, headers)
    assert r.status == 400
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))


def test_path_like_and_hostile_file_names_are_sealed_never_used(world, tmp_path):
    o, portal = world
    inv = invite(o, portal.base)
    names = ["../../../../tmp/evil-portal-file", "..\\..\\windows\\evil.txt", "<img src=x onerror=alert(1)>.txt"]
    r, page = request(portal, "POST", _path(inv["link"]),
                      *form(*[(n, f"content {i}".encode()) for i, n in enumerate(names)]))
    assert r.status == 200
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;.txt" in page  # shown back escaped
    assert not Path("/tmp/evil-portal-file").exists()
    assert not list(portal.workdir.rglob("*evil*")) and not list(o.vault_dir.rglob("*evil*"))
    mine = [x for x in pending(o) if x.get("invitation") == inv["id"]]
    assert len(mine) == 3 and all(len(x["id"]) == 32 for x in mine)
    for x in mine:
        o.json("intake", "accept", x["id"], who="bob")
    titles = {d["title"] for d in o.json("doc", "list", o.number, who="bob")}
    assert {"evil-portal-file", "evil.txt", "<img src=x onerror=alert(1)>.txt"} <= titles


def test_unexpected_form_fields_are_refused(world):
    o, portal = world
    inv = invite(o, portal.base)
    for parts in ([("f9", "a.txt", b"x")], [("c1", None, b"contract"), ("c1", None, b"other"), ("f1", "a", b"x")],
                  [("f1", "a", b"x"), ("whatever", None, b"y")], [("c1", None, b"x" * 5000)]):
        r, _ = request(portal, "POST", _path(inv["link"]), *multipart(parts))
        assert r.status == 400
    r, _ = request(portal, "POST", _path(inv["link"]), b"f1=x", {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400
    r, _ = request(portal, "POST", _path(inv["link"]), *form(("a.txt", b"x"), category="secret-category"))
    assert r.status == 400
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))


def test_uploads_beyond_the_cap_are_refused_not_queued(world):
    o, portal = world
    invs = [invite(o, portal.base) for _ in range(3)]
    links = [i["link"] for i in invs]
    body, headers = form(("slow.txt", b"s" * 500_000))
    held = []
    try:
        for link in links[:2]:
            s = _posting(portal, link, {"Content-Length": str(len(body)), "Content-Type": headers["Content-Type"]})
            s.sendall(body[:1000])
            held.append(s)
        # Wait until both slow uploads hold their slots (each has claimed its invitation's use),
        # rather than for a fixed time, which a loaded machine may not keep.
        deadline = time.monotonic() + 20
        uses = [o.vault_dir / "intake" / "uses" / i["id"] for i in invs[:2]]
        while not all(d.is_dir() and any(d.iterdir()) for d in uses) and time.monotonic() < deadline:
            time.sleep(0.05)
        r, page = request(portal, "POST", _path(links[2]), body, headers)
        assert r.status == 503
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    r, _ = request(portal, "POST", _path(links[2]), body, headers)
    assert r.status == 200


def test_requests_per_invitation_are_rate_limited(world):
    o, portal = world
    inv = invite(o, portal.base)
    iid = inv["id"]
    statuses = [request(portal, "GET", f"/i/{iid}/{'B' * 43}")[0].status for _ in range(12)]
    assert statuses == [404] * 12
    r, page = request(portal, "GET", _path(inv["link"]), headers={"Accept-Language": "en"})
    assert r.status == 429 and "Too many attempts" in page  # even the right token, for a while
    other = invite(o, portal.base)
    assert request(portal, "GET", _path(other["link"]))[0].status == 200  # other links are not affected


@pytest.mark.parametrize("path", ["/", "/static/portal.css", "/nope", "/i/x/y"])
def test_security_headers_on_every_response(world, path):
    o, portal = world
    r, _ = request(portal, "GET", path)
    for name, value in HEADERS.items():
        assert value in (r.getheader(name) or ""), (path, name)
    assert "default-src 'none'" in r.getheader("content-security-policy")
    assert r.getheader("server") is None


def test_the_invitation_page_and_the_log_keep_the_token_to_themselves(world):
    o, portal = world
    inv = invite(o, portal.base, "--note", MARKERS["title"])
    r, page = request(portal, "GET", _path(inv["link"]))
    assert r.status == 200 and MARKERS["title"] in page
    assert r.getheader("cache-control") == "no-store"
    token = inv["link"].rsplit("/", 1)[1]
    assert token not in portal.log.read_text(errors="replace")
    rec = (o.vault_dir / "intake" / "invitations" / f"{inv['id']}.toml").read_text()
    assert token not in rec and MARKERS["title"] not in rec  # only the hash, and the note sealed


def test_the_portal_needs_no_key_at_all(tmp_path, monkeypatch):
    """Run on a vault whose every secret (key tables, intake and ring identities) has been taken away:
    it still takes submissions, which the archivist accepts once the keys are back."""
    o = portal_office(tmp_path, monkeypatch)
    away = tmp_path / "away"
    away.mkdir()
    shutil.move(o.vault_dir / "keys", away / "keys")
    for p in (o.vault_dir / "rings").glob("*.age"):
        shutil.move(p, away / p.name)
    portal = start_portal(o.vault_dir, tmp_path / "p")
    try:
        inv = invite(o, portal.base, "--note", "n")  # issuing reads no key table either
        data = os.urandom(300_000)
        r, page = request(portal, "POST", _path(inv["link"]), *form(("data.bin", data), category="contract"))
        assert r.status == 200
        environ = Path(f"/proc/{portal.proc.pid}/environ").read_bytes()
        assert b"VAULT_IDENTITY" not in environ
    finally:
        portal.stop()
    shutil.move(away / "keys", o.vault_dir / "keys")
    for p in away.glob("*.age"):
        shutil.move(p, o.vault_dir / "rings" / p.name)
    sid = pending(o)[0]["id"]
    docno = o.json("intake", "accept", sid, who="bob")["number"]
    out = tmp_path / "back"
    o.run("doc", "view", docno, "--output", str(out), who="bob")
    assert out.read_bytes() == data


_ACCESS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} vault\.portal [A-Z]+ ", re.M)


def _log_since(portal, offset: int, requests: int) -> str:
    """What the portal's log gained since ``offset``, once it holds the access line of each of
    ``requests`` requests (each is written after its answer)."""
    def text() -> str:
        return portal.log.read_bytes()[offset:].decode("utf-8", "replace")

    assert _eventually(lambda: len(_ACCESS_LINE.findall(text())) >= requests, 30), text()
    return text()


def test_a_boundary_rfc_2046_does_not_allow_is_refused_and_takes_no_use(world):
    o, portal = world
    inv = invite(o, portal.base)  # one use
    start = portal.log.stat().st_size
    for boundary in ("b" * 71, "b" * 300, "ends-in-space ", "semi;colon"):
        body, _ = multipart([("c1", None, b"other"), ("d1", None, b"2026-01-01"), ("f1", "a.txt", b"x")], boundary)
        r, page = request(portal, "POST", _path(inv["link"]), body,
                          {"Content-Type": f'multipart/form-data; boundary="{boundary}"', "Accept-Language": "en"})
        assert r.status == 400 and "The form could not be read" in page, boundary
    assert "Traceback" not in _log_since(portal, start, 4)
    assert not (o.vault_dir / "intake" / "uses" / inv["id"]).is_dir() or not any((o.vault_dir / "intake" / "uses" / inv["id"]).iterdir())
    r, _ = request(portal, "POST", _path(inv["link"]), *form(("a.txt", b"hello")))
    assert r.status == 200  # the refused attempts took no use: the one use is still there


def test_a_malformed_multipart_body_gets_the_form_page_and_gives_its_use_back(world):
    o, portal = world
    inv = invite(o, portal.base)  # one use
    good = [("c1", None, b"other"), ("d1", None, b"2026-01-01")]
    bodies = {
        "bytes before the first boundary": b"garbage" * 10,
        "a part header line without a colon": b"--b0undary\r\nContent-Disposition form-data\r\n\r\nx\r\n--b0undary--\r\n",
        "a 5000-character file name": multipart(good + [("f1", "x" * 5000, b"zz")])[0],
        "a part header that never ends": b"--b0undary\r\nContent-Disposition: form-data; name=\"c1\"" + b"x" * 20000,
    }
    start = portal.log.stat().st_size
    for what, body in bodies.items():
        r, page = request(portal, "POST", _path(inv["link"]), body,
                          {"Content-Type": "multipart/form-data; boundary=b0undary", "Accept-Language": "en"})
        assert r.status == 400 and "The form could not be read" in page, what
    log = _log_since(portal, start, len(bodies))
    assert "Traceback" not in log and " 500 " not in log
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))
    assert not any(n.startswith(".upload-") for n in leftovers(o))
    r, _ = request(portal, "POST", _path(inv["link"]), *form(("a.txt", b"hello")))
    assert r.status == 200  # each refusal gave the one use back


def _raw_get(portal, target: str) -> bytes:
    u = urlsplit(portal.base)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while data := s.recv(65536):
            answer += data
    return answer


def test_the_log_keeps_the_token_out_of_every_spelling_of_the_path(world):
    o, portal = world
    inv = invite(o, portal.base, "--uses", "2")
    path, token = _path(inv["link"]), inv["link"].rsplit("/", 1)[1]
    start = portal.log.stat().st_size
    for target in ("/" + path, "/." + path, path.replace("/i/", "/i//"), "/x" + path, path + "/more",
                   path.replace(token, token + "%0A"), f"http://127.0.0.1{path}", f"http://x/{path}"):
        assert _raw_get(portal, target).startswith(b"HTTP/1.1 "), target
    log = _log_since(portal, start, 8)
    assert log.count(" vault.portal GET ") >= 8  # each request has its line ...
    assert token not in log and token[:40] not in log  # ... and none names the token
    assert request(portal, "GET", path)[0].status == 200  # the link itself still works


def test_a_line_feed_in_the_path_cannot_forge_a_log_line(world):
    o, portal = world
    start = portal.log.stat().st_size
    forged = "2026-01-01 00:00:00,000 vault.portal POST /i/forged/… 200 0.001s"
    for sep in ("%0A", "%0D", "%0D%0A", "%E2%80%A8", "%1B[2K"):
        request(portal, "GET", "/x" + sep + forged.replace(" ", "%20").replace("…", "%E2%80%A6"))
    lines = _log_since(portal, start, 5).splitlines()
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert not any("\x1b" in line or "\r" in line or "\u2028" in line for line in lines)
    assert sum("/i/forged/" in line for line in lines) == 5  # each request on its own single line, escaped


def test_a_date_in_the_future_or_before_1900_is_refused_and_gives_the_use_back(world):
    o, portal = world
    inv = invite(o, portal.base)  # one use
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()  # a day's margin for the time zones
    for date in (tomorrow, "2999-12-31", "1899-12-31", "0001-01-01"):
        body, headers = form(("a.txt", b"hello"), date=date)
        r, page = request(portal, "POST", _path(inv["link"]), body, headers | {"Accept-Language": "en"})
        assert r.status == 400 and "A date is missing or wrong" in page, date
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))
    assert not any(n.startswith(".upload-") for n in leftovers(o))
    r, _ = request(portal, "POST", _path(inv["link"]), *form(("a.txt", b"hello"), date="1900-01-01"))
    assert r.status == 200  # the earliest date allowed; the refusals gave the one use back


def test_files_adding_up_to_more_than_the_submission_limit_are_refused(world):
    o, portal = world
    inv = invite(o, portal.base)  # one use
    mb = 1_000_000  # --max-file-mb 1, --max-submission-mb 2: each file fits, together they do not
    body, headers = form(("a.bin", b"a" * mb), ("b.bin", b"b" * mb), ("c.bin", b"c" * 60_000))
    assert len(body) < 2 * mb + 64 * 1024  # under the body's allowance for the form's own bytes
    r, page = request(portal, "POST", _path(inv["link"]), body, headers | {"Accept-Language": "en"})
    assert r.status == 413 and "Too large" in page
    assert not any(x.get("invitation") == inv["id"] for x in pending(o))  # not even the files that fitted
    assert not any(n.startswith(".upload-") for n in leftovers(o))
    r, _ = request(portal, "POST", _path(inv["link"]), *form(("a.bin", b"a" * mb), ("b.bin", b"b" * mb)))
    assert r.status == 200  # exactly the limit is allowed; the refusal gave the use back


@pytest.mark.parametrize("path", ["//evil.example/login", "///evil.example/", "/%5Cevil.example/x", "/%5C/evil.example",
                                  "/%09/evil.example", "//evil.example/i/x/y"])
def test_no_page_links_off_the_site_whatever_path_was_asked_for(world, path):
    o, portal = world
    for method in ("GET", "DELETE"):
        r, page = request(portal, method, path)
        assert r.status in (404, 405)
        links = re.findall(r'(?:href|action|src)="([^"]*)"', page)
        assert links and all(x.startswith("/") and x[1:2] not in ("/", "\\") and "\t" not in x for x in links), links
        assert re.search(r'<a class="switch" href="/\?lang=', page)  # the language switch goes to the home page


def test_a_client_that_drips_is_cut_off_and_frees_its_slot(world):
    o, portal = world  # --max-uploads 2, --idle-timeout 2, --min-upload-rate 1/3 (1 kB in each 3 s)
    invs = [invite(o, portal.base) for _ in range(2)]
    body, headers = form(("drip.txt", b"x" * 5000))
    socks = [_posting(portal, i["link"], {"Content-Length": str(len(body)), "Content-Type": headers["Content-Type"]})
             for i in invs]
    answers = [b"", b""]
    pos, deadline = 0, time.monotonic() + 60
    try:
        # A byte a second on each: never idle for the idle timeout, far below the minimum rate.
        while not all(answers) and time.monotonic() < deadline and pos < len(body):
            for k, s in enumerate(socks):
                if not answers[k]:
                    try:
                        s.sendall(body[pos:pos + 1])
                    except OSError:
                        answers[k] = b"(closed)"
            pos += 1
            ready, _, _ = select.select([s for k, s in enumerate(socks) if not answers[k]], [], [], 1)
            for s in ready:
                answers[socks.index(s)] = s.recv(65536) or b"(closed)"
    finally:
        for s in socks:
            s.close()
    assert all(a.startswith(b"HTTP/1.1 400") or a == b"(closed)" for a in answers), answers  # cut off, within 60 s
    assert pos < len(body)  # long before the body was sent
    assert _eventually(lambda: not any(n.startswith(".upload-") for n in leftovers(o)), 10)
    assert not any(x.get("invitation") in {i["id"] for i in invs} for x in pending(o))
    for i in invs:  # the slots are free and each use was given back
        r, _ = request(portal, "POST", _path(i["link"]), *form(("ok.txt", b"ok")))
        assert r.status == 200


def _closed_by_the_server(s: socket.socket, drip: bytes = b"", seconds: float = 30) -> bool:
    """Whether the portal closes ``s`` within ``seconds``, while ``drip`` is sent a byte a second."""
    deadline = time.monotonic() + seconds
    for b in drip.ljust(int(seconds), b" "):
        if time.monotonic() > deadline:
            break
        try:
            if drip:
                s.sendall(bytes([b]))
            if select.select([s], [], [], 1)[0] and s.recv(65536) == b"":  # (the rest of an answer is read past)
                return True
        except OSError:
            return True
    return False


def test_silent_connections_are_closed_and_shut_nobody_out(world):
    o, portal = world  # --header-timeout 3
    u = urlsplit(portal.base)
    silent = [socket.create_connection((u.hostname, u.port), timeout=10) for _ in range(250)]  # no request at all
    try:
        time.sleep(0.5)
        r, page = request(portal, "GET", "/", headers={"Accept-Language": "en"})
        assert r.status == 200  # open connections that ask nothing take nobody's place
        inv = invite(o, portal.base)
        assert request(portal, "POST", _path(inv["link"]), *form(("a.txt", b"hello")))[0].status == 200
        assert _closed_by_the_server(silent[0])  # the portal closes a connection that sends nothing
        assert all(_closed_by_the_server(s, seconds=1) for s in silent[1:])
    finally:
        for s in silent:
            s.close()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:  # headers a byte a second
        assert _closed_by_the_server(s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:  # a kept-alive connection gone quiet
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed_by_the_server(s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100)


def test_requests_beyond_the_cap_in_progress_get_the_busy_page():
    import asyncio

    from vault.portal.guard import SecurityHeaders

    started, release = asyncio.Event(), asyncio.Event()

    async def slow(scope, receive, send):
        started.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def busy(scope, receive, send):
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"busy"})

    async def call(mw):
        sent = []

        async def send(message):
            sent.append(message)

        await mw({"type": "http", "method": "GET", "path": "/"}, None, send)
        return sent[0]["status"]

    async def main():
        mw = SecurityHeaders(slow, busy=busy, max_requests=1)
        first = asyncio.ensure_future(call(mw))
        await started.wait()
        assert await call(mw) == 503  # one in progress: the next is refused, not queued
        release.set()
        assert await first == 200
        release.clear()
        release.set()
        assert await call(mw) == 200  # the first one done, there is room again

    asyncio.run(main())
