"""The owner of an ``s3://`` backup target runs the server the vault talks to, and answers as they
like: listings that never end or name keys outside the prefix, bodies without end, a server that
accepts and never answers or answers a byte at a time, errors of shapes boto3 has no name for, a
conditional put that reports success and stores nothing. Each command ends, in bounded time and memory, with one line."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

from backup_helpers import actor, add_docs, office_with_dossiers, one_error

pytest.importorskip("boto3")  # the test extra installs it; the s3 target needs it

PY = sys.executable
BUCKET = "owned"


class Store(ThreadingHTTPServer):
    """An S3-speaking server on 127.0.0.1 holding objects in memory, answering just what boto3 asks
    (ListObjectsV2, GetObject, HeadObject, PutObject with If-None-Match, DeleteObject), honestly until
    ``hook`` answers a request in its own way."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.objects: dict[str, bytes] = {}
        self.hook: Callable[[Handler, str, str, dict[str, str]], bool] | None = None
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Store
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, length: int | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status: int, code: str, message: str = "no") -> None:
        self.answer(status, f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>".encode(),
                    {"Content-Type": "application/xml"})

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if "aws-chunked" in self.headers.get("Content-Encoding", "") or \
                self.headers.get("x-amz-content-sha256", "").startswith("STREAMING"):
            out, rest = b"", data
            while True:
                head, rest = rest.split(b"\r\n", 1)
                size = int(head.split(b";")[0], 16)
                if not size:
                    break
                out, rest = out + rest[:size], rest[size + 2:]
            data = out
        return data

    def handle_one(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).lstrip("/")
        bucket, _, key = path.partition("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        data = self.body() if self.command in ("PUT", "POST") else b""
        with self.server.lock:
            self.server.seen.append((self.command, key))
        hook = self.server.hook
        if hook is not None and hook(self, self.command, key, query):
            return
        objects = self.server.objects
        if self.command == "GET" and not key:
            self.list_page(query)
        elif self.command in ("GET", "HEAD"):
            if key not in objects:
                return self.error(404, "NoSuchKey") if self.command == "GET" else self.answer(404)
            self.answer(200, objects[key], {"ETag": '"' + hashlib.md5(objects[key]).hexdigest() + '"'})
        elif self.command == "PUT" and key:
            if self.headers.get("If-None-Match") == "*" and key in objects:
                return self.error(412, "PreconditionFailed")
            objects[key] = data
            self.answer(200, b"", {"ETag": '"' + hashlib.md5(data).hexdigest() + '"'})
        elif self.command == "PUT":
            self.answer(200)
        elif self.command == "DELETE":
            objects.pop(key, None)
            self.answer(204)
        else:
            self.error(400, "InvalidRequest")

    def list_page(self, query: dict[str, str], keys: list[str] | None = None, token: str | None = None) -> None:
        prefix = query.get("prefix", "")
        if keys is None:
            names = sorted(k for k in self.server.objects if k.startswith(prefix))
            start = int(query.get("continuation-token") or 0)
            keys, token = names[start:start + 1000], (str(start + 1000) if start + 1000 < len(names) else None)
        self.answer(200, list_xml(prefix, keys, token, query.get("encoding-type") == "url"), {"Content-Type": "application/xml"})

    do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = handle_one


def list_xml(prefix: str, keys: list[str], token: str | None, url: bool = True) -> bytes:
    if url:  # boto3 asks for names URL-encoded (a control character has no place in XML)
        keys, prefix = [quote(k, safe="/") for k in keys], quote(prefix, safe="/")
    items = "".join(f"<Contents><Key>{escape(k)}</Key><Size>1</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
                    f"<ETag>&quot;x&quot;</ETag><StorageClass>STANDARD</StorageClass></Contents>" for k in keys)
    more = "<IsTruncated>false</IsTruncated>" if token is None else "<IsTruncated>true</IsTruncated>" + (
        f"<NextContinuationToken>{escape(token)}</NextContinuationToken>" if token else "")  # "": truncated, no token
    return (f"<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>"
            f"<Name>{BUCKET}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(keys)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"{'<EncodingType>url</EncodingType>' if url else ''}{items}{more}</ListBucketResult>").encode()


@pytest.fixture
def store():
    server = Store()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.hook = None
    server.shutdown()
    server.server_close()


@pytest.fixture
def owned(tmp_path, monkeypatch, store):
    """An office backed up, honestly, to the server ``store``; (office, target URL, store)."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "XDG_CACHE_HOME": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=1)
    add_docs(o, numbers[0], 2, 5000, tmp_path / "src", act=actor(o))
    o.numbers = numbers
    url = f"s3://{BUCKET}/vault-a?endpoint={quote(store.endpoint, safe='')}&timeout=2"
    o.run("backup", "run", url, who="bob")  # as the commands below: registers the target with bob's identity
    store.seen.clear()
    return o, url, store


def cli(o, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """``vault ARGS`` in a process of its own, limited to 1 GiB of memory; and the seconds it took."""
    import resource

    env = {**os.environ, "VAULT_DIR": str(o.vault_dir), "VAULT_PASSPHRASE_FILE": str(o.root / "pass"),
           "VAULT_IDENTITY": str(o.ident("bob")), "VAULT_AGENT_SOCK": str(o.root / "none.sock")}

    def one_gib() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    start = time.monotonic()
    try:
        r = subprocess.run([PY, "-m", "vault", *args], env=env, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=one_gib)
    except subprocess.TimeoutExpired:
        pytest.fail(f"vault {' '.join(args)} still runs after {timeout} s")
    return r, time.monotonic() - start




def stall(release: threading.Event, *, after: bytes | None = None):
    """A hook that accepts every request and answers nothing (or, with ``after``, only the head of a
    GET of a pack and ``after`` of its body) until ``release`` is set."""

    def hook(h: Handler, method: str, key: str, query: dict[str, str]) -> bool:
        if after is not None:
            if method != "GET" or "/data/" not in key:
                return False
            h.send_response(200)
            h.send_header("Content-Length", str(len(h.server.objects[key])))
            h.end_headers()
            h.wfile.write(after)
            h.wfile.flush()
        release.wait(120)
        h.close_connection = True
        return True

    return hook


@pytest.mark.parametrize("command", ["list", "restore"])
def test_a_server_that_never_answers_ends_the_command_in_seconds(owned, command):
    """A request waits ``?timeout=`` seconds (default 20) for each answer and is tried 3 times in
    all: a server that accepts and then says nothing — or stops halfway through a pack — ends the
    command with one line, not after boto3's 60 s x 5 tries a request."""
    o, url, store = owned
    url = url.replace("timeout=2", "timeout=1")
    release = threading.Event()
    try:
        store.hook = stall(release, after=b"x" * 100 if command == "restore" else None)
        args = ("backup", "list", url) if command == "list" else ("backup", "restore", url, "latest", str(o.root / "r"))
        r, took = cli(o, *args, timeout=60)
    finally:
        release.set()
    line = one_error(r, "timeout")
    assert took < 20, (took, line)
    if command == "restore":
        assert not (o.root / "r").exists() or not any((o.root / "r").iterdir())


def test_a_bad_timeout_is_refused(owned):
    o, url, store = owned
    for bad in ("0", "-1", "nan", "inf", "soon", "4000"):
        r = o.run("backup", "list", url.replace("timeout=2", f"timeout={bad}"), ok=False)
        assert r.exit_code != 0 and r.stderr.startswith("vault: error: ") and "timeout" in r.stderr, r.stderr
        assert "vault: hint: give seconds" in r.stderr and "Traceback" not in r.output


def listing(pages: Callable[[str, int], tuple[list[str], str | None]]):
    """A hook answering every listing with ``pages(prefix, n)`` for its n-th page (0 first): the keys
    and the next continuation token."""

    def hook(h: Handler, method: str, key: str, query: dict[str, str]) -> bool:
        if method != "GET" or key:
            return False
        token = query.get("continuation-token")
        n = 0 if token is None else int(token.split("-")[0]) + 1
        keys, nxt = pages(query.get("prefix", ""), n)
        h.list_page(query, keys, nxt)
        return True

    return hook


HOSTILE_LISTINGS = {
    # fresh tokens for ever, each page empty
    "empty pages": lambda p, n: ([], f"{n}-more"),
    # the same page again and again under new tokens
    "the same page": lambda p, n: ([p + "aa/" + "0" * 64], f"{n}-again"),
    # two tokens in turn
    "tokens in turn": lambda p, n: ([p + f"{n % 2}" * 64], f"{n % 2}-x" if n < 1 else f"{(n - 1) % 2}-x"),
    # truncated, with no token to go on with
    "no token": lambda p, n: ([p + "1" * 64], None if n else ""),
    "outside the prefix": lambda p, n: ([p.replace("vault-a/", "vault-b/") + "1" * 64], None),
    "a climbing name": lambda p, n: ([p + "../../config"], None),
    "a control character": lambda p, n: ([p + "aa/\x01" + "1" * 8], None),
    "a newline": lambda p, n: ([p + "aa\nbb"], None),
}


@pytest.mark.parametrize("every_command", [False, True])
def test_a_hostile_listing_ends_every_command_in_one_line(owned, every_command):
    """A listing that does not move on — empty pages or the same names under fresh tokens, tokens
    that come back, a truncated page with no token — or that names a key outside the target's
    prefix or no object name: the command stops at once with one line, and neither the vault nor
    the target is changed (before, pages without end were asked for for ever, and a key outside
    the prefix was cut into a name)."""
    from backup_helpers import tree_digest

    o, url, store = owned
    before, objects = tree_digest(o.vault_dir), dict(store.objects)
    for shape, pages in HOSTILE_LISTINGS.items():
        store.hook = listing(pages)
        commands = [("backup", "list", url)]
        if every_command and shape in ("empty pages", "outside the prefix"):
            commands = [("backup", "verify", url), ("backup", "run", url), ("backup", "prune", url, "--keep-daily", "1"),
                        ("backup", "restore", url, "latest", str(o.root / "r"))]
        elif every_command:
            continue
        for args in commands:
            r, took = cli(o, *args, timeout=60)
            line = one_error(r, "the server")
            assert "\n" not in line and "\x01" not in line, (shape, line)
    assert tree_digest(o.vault_dir) == before
    assert {k: v for k, v in store.objects.items() if "/locks/" not in k} == objects


def test_a_listing_without_end_is_stopped_at_its_bound(owned, monkeypatch):
    """New names on every page for ever: the listing stops at ``S3_LIST_MAX`` names (two million;
    set to 3000 here), with one error naming the bound."""
    from vault.backup.repo import Repo
    from vault.errors import IntegrityError
    from vault_plugins import s3target

    o, url, store = owned
    monkeypatch.setattr(s3target, "S3_LIST_MAX", 3000)
    store.hook = listing(lambda p, n: ([p + f"{n:08d}{i:04d}" for i in range(1000)], f"{n}-more"))
    with pytest.raises(IntegrityError, match="more than 3000 objects"):
        Repo(url).list("data/")
    assert sum(1 for m, k in store.seen if m == "GET" and not k) == 4


def test_an_honest_listing_of_many_pages(owned):
    """Pages of 1000 names, as S3 gives them, are all read; the empty "folder" objects a console
    makes (``data/``, ``locks/``) are no objects, and the vault's commands pass them by."""
    from vault.backup.repo import Repo

    o, url, store = owned
    for i in range(2500):
        store.objects[f"vault-a/locks/{i:032x}"] = b"{}"
    store.objects["vault-a/locks/"] = store.objects["vault-a/data/"] = b""
    assert len(Repo(url).list("locks/")) == 2500
    for i in range(2500):
        del store.objects[f"vault-a/locks/{i:032x}"]
    r, _ = cli(o, "backup", "verify", url)
    assert r.returncode == 0 and "no problems" in r.stdout, (r.stdout, r.stderr)


def on_get(suffix: str, answer: Callable[[Handler, str], None]):
    """A hook that answers a GET of a key ending in ``suffix`` with ``answer(handler, key)``."""

    def hook(h: Handler, method: str, key: str, query: dict[str, str]) -> bool:
        if method == "GET" and key and key.endswith(suffix):
            answer(h, key)
            h.close_connection = True
            return True
        return False

    return hook


def xml_error(status: int, code: str, message: str):
    return lambda h, key: h.answer(status, f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode(),
                                   {"Content-Type": "application/xml"})


def test_an_error_answer_of_any_shape_is_one_line_naming_it(owned):
    """Error codes boto3 has no name for, a code over two lines, an HTML page, an empty 400: one
    line naming the code the server gave and the operation, with a hint about the endpoint —
    before, 'plugin targets failed: ClientError: An error occurred (…' cut at its first line, with
    the hint 'see vault plugins list'."""
    o, url, store = owned
    shapes = [
        (xml_error(418, "Teapot\nSecond line", "short and stout"), "Teapot Second line short and stout"),
        (lambda h, key: h.answer(403, b"<html><body>go away</body></html>", {"Content-Type": "text/html"}), "403"),
        (lambda h, key: h.answer(400), "400"),
        (xml_error(409, "OperationAborted", "x" * 5000), "OperationAborted"),
    ]
    for answer, words in shapes:
        store.hook = on_get("/config", answer)
        r, _ = cli(o, "backup", "list", url)
        line = one_error(r, "the server refused GetObject", words)
        assert len(line) < 500 and "check the endpoint, the bucket and the credentials" in r.stderr


def endless(h: Handler, key: str) -> None:
    """A body sent in chunks for ever (till the client goes), with no length."""
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    try:
        while True:
            h.wfile.write(chunk)
    except OSError:
        pass


def huge(h: Handler, key: str) -> None:
    """A body whose Content-Length says 64 GiB, sent till the client goes."""
    h.send_response(200)
    h.send_header("Content-Length", str(64 << 30))
    h.end_headers()
    try:
        h.wfile.write(b'{"format": 1, "pad": "')
        while True:
            h.wfile.write(b" " * (1 << 20))
    except OSError:
        pass


@pytest.mark.parametrize("answer", [endless, huge])
def test_a_config_or_history_without_end_is_named_not_held(owned, answer):
    """``config`` and ``history`` are a few hundred bytes: a body with no length is refused, and one
    that says 64 GiB is read to its kind's bound (1 MiB) and named (before, both were read till the 1 GiB the test
    allows was gone: a MemoryError traceback)."""
    o, url, store = owned
    for suffix, args in [("/config", ("backup", "list", url)), ("/history", ("backup", "run", url))]:
        store.hook = on_get(suffix, answer)
        r, _ = cli(o, *args)
        line = one_error(r, suffix.strip("/"))
        assert ("without its length" if answer is endless else "larger than 1 MiB") in line


def test_a_pack_cut_short_is_named(owned):
    """A body shorter than its Content-Length: restore names the pack (verify --read-data names it as
    a problem), and writes nothing."""
    o, url, store = owned
    store.hook = on_get("", lambda h, key: h.answer(200, h.server.objects[key][:100], length=len(h.server.objects[key]))
                        if "/data/" in key else h.answer(200, h.server.objects[key]))
    r, _ = cli(o, "backup", "restore", url, "latest", str(o.root / "r"))
    one_error(r, "data/", "100 read")
    r, _ = cli(o, "backup", "verify", url, "--read-data")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "problem: data/" in r.stdout


def test_a_head_that_says_yes_and_a_get_that_says_no(owned):
    """HEAD answers 200 for every key, GET NoSuchKey for a tree: restore names the tree missing."""
    o, url, store = owned
    store.hook = on_get("", lambda h, key: h.error(404, "NoSuchKey") if "/trees/" in key else h.answer(200, h.server.objects[key]))
    r, _ = cli(o, "backup", "restore", url, "latest", str(o.root / "r"))
    one_error(r, "no object trees/")


def test_shredding_the_key_mirror_ends_against_a_hostile_server(owned):
    """``vault.backup.shred_keys`` (what ``destroy execute`` runs for each target) against a listing
    without end or a server that never answers: it returns, not reached, with the error — the key
    window then bounds the old keys — instead of holding the destruction."""
    from vault import backup

    o, url, store = owned
    store.hook = listing(HOSTILE_LISTINGS["empty pages"])
    rep = backup.shred_keys(url, ["keys/_index.age"])
    assert not rep.reached and "does not move on" in rep.error and not rep.removed
    release = threading.Event()
    store.hook = stall(release)
    start = time.monotonic()
    try:
        rep = backup.shred_keys(url.replace("timeout=2", "timeout=1"), ["keys/_index.age"])
    finally:
        release.set()
    assert not rep.reached and "timeout" in rep.error and time.monotonic() - start < 20


def test_a_conditional_put_answered_but_not_kept_fails_the_run(owned, tmp_path):
    """A server that answers every ``If-None-Match: *`` put with success and keeps nothing: the run
    looks for its snapshot once it is put and stops, naming it, before the target's history record
    moves on (before, the run reported the snapshot saved and verify found no problem)."""
    o, url, store = owned
    add_docs(o, o.numbers[0], 1, 3000, tmp_path / "src2", act=actor(o), seed=7)
    history = store.objects["vault-a/history"]

    def keep_nothing(h: Handler, method: str, key: str, query: dict[str, str]) -> bool:
        if method == "PUT" and h.headers.get("If-None-Match") == "*":
            h.answer(200, b"", {"ETag": '"0"'})
            return True
        return False

    store.hook = keep_nothing
    r, _ = cli(o, "backup", "run", url)
    one_error(r, "snapshots/", "does not hold it")
    assert store.objects["vault-a/history"] == history


def test_a_planted_pack_without_end_is_not_held_by_the_next_run(owned):
    """A pack no index names is read by the next run to adopt what an interrupted run uploaded: one
    planted whose body says 64 GiB is read to its bound (``ADOPT_MAX``, 64 MiB) and passed by, its
    blobs uploaded again — the run ends, saved, in bounded memory (before, it read till memory ran
    out: a MemoryError traceback)."""
    o, url, store = owned
    orphan = "vault-a/data/ab/ab" + "0" * 62
    store.objects[orphan] = b"x"
    store.hook = on_get(orphan, huge)
    r, _ = cli(o, "backup", "run", url)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "saved" in r.stdout


def test_verify_stops_asking_a_server_that_has_gone_silent(owned):
    """``backup verify`` names each object it cannot read as a problem and goes on; once a request
    has timed out on all its tries the target asks nothing more in the command, so a server that
    goes silent after the listings costs one timeout, not one for every snapshot and index (with
    the default 20 s x 3 tries, a minute each: hours for a target of many)."""
    o, url, store = owned
    for _ in range(3):
        o.run("backup", "run", url, who="bob")
    url = url.replace("timeout=2", "timeout=1")
    release = threading.Event()
    silent = stall(release)
    store.hook = lambda h, method, key, query: bool(key) and "/config" not in key and silent(h, method, key, query)
    try:
        r, took = cli(o, "backup", "verify", url)
    finally:
        release.set()
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "timeout" in r.stdout or "timeout" in r.stderr
    assert took < 9, took


def test_a_pack_without_end_is_read_no_further_than_its_index_says(owned):
    """A pack served with a Content-Length of 64 GiB: ``verify --read-data`` reads one byte past the
    size the index gives it and names it damaged, and restore names its blob, each in seconds
    (before, verify read on for the whole 64 GiB: over 100 s, and a target may declare more)."""
    o, url, store = owned
    store.hook = on_get("", lambda h, key: huge(h, key) if "/data/" in key else h.answer(200, h.server.objects[key]))
    r, took = cli(o, "backup", "verify", url, "--read-data")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert re.search(r"problem: data/\S+: damaged", r.stdout), r.stdout
    assert took < 30, took
    r, _ = cli(o, "backup", "restore", url, "latest", str(o.root / "r"))
    one_error(r, "data/", "damaged")


def drip(h: Handler, data: bytes, release: threading.Event, every: float = 0.3) -> None:
    """Send ``data`` one byte every ``every`` seconds, till it is sent, the client goes, or ``release``."""
    try:
        for i in range(len(data)):
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            if release.wait(every):
                break
    except OSError:
        pass
    h.close_connection = True


def trickle(part: str, release: threading.Event):
    """A hook that answers, a byte every 0.3 s: ``head`` — every request for an object but
    ``config``, with a status line and a header that never ends; ``listing`` — every listing, its XML after a head
    sent at once; ``body`` — every GET of a pack, its bytes after a head sent at once."""

    def hook(h: Handler, method: str, key: str, query: dict[str, str]) -> bool:
        if part == "head" and key and not key.endswith("/config"):
            drip(h, b"HTTP/1.1 200 OK\r\nx-amz-meta-drip: " + b"a" * 60000, release)
        elif part == "listing" and method == "GET" and not key:
            names = sorted(k for k in h.server.objects if k.startswith(query.get("prefix", "")))
            xml = list_xml(query.get("prefix", ""), names, None, query.get("encoding-type") == "url")
            h.send_response(200)
            h.send_header("Content-Length", str(len(xml)))
            h.end_headers()
            drip(h, xml, release)
        elif part == "body" and method == "GET" and "/data/" in key:
            h.send_response(200)
            h.send_header("Content-Length", str(len(h.server.objects[key])))
            h.end_headers()
            drip(h, h.server.objects[key], release)
        else:
            return False
        return True

    return hook


@pytest.mark.parametrize("part, command", [("head", "list"), ("head", "run"), ("listing", "list"), ("body", "restore"),
                                           ("body", "verify")])
def test_a_server_that_trickles_ends_the_command_in_seconds(owned, tmp_path, part, command):
    """A server that sends a byte every 0.3 s — of an answer's head, of a listing, of a pack — never
    leaves its socket silent for the timeout (1 s here): a request's head and a listing must come
    whole within the timeout, and a body must keep up 64 KiB/s on average after it (``S3_MIN_RATE``),
    so each command ends in seconds with one line, and nothing is written (before, each held the
    command for as long as the server liked: a restore of a 10 KB pack for most of an hour)."""
    o, url, store = owned
    url = url.replace("timeout=2", "timeout=1")
    if command == "run":
        o.run("backup", "run", url, who="bob")  # the URL with its new timeout is a target of its own: registered
        add_docs(o, o.numbers[0], 1, 3000, tmp_path / "src2", act=actor(o), seed=7)
    args = {"list": ("backup", "list", url), "run": ("backup", "run", url), "verify": ("backup", "verify", url, "--read-data"),
            "restore": ("backup", "restore", url, "latest", str(o.root / "r"))}[command]
    from backup_helpers import tree_digest

    before, objects, release = tree_digest(o.vault_dir), dict(store.objects), threading.Event()
    try:
        store.hook = trickle(part, release)
        r, took = cli(o, *args, timeout=40)
    finally:
        release.set()
    if command == "verify":
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert re.search(r"problem: data/\S+: \S+: data/\S+: timeout: the server took more than \d+ s to send it", r.stdout), r.stdout
        assert "does not decrypt" not in r.stdout, r.stdout  # a key table the target no longer gives is not named damaged
    else:
        line = one_error(r, "timeout", "data/" if part == "body" else "the server took more than",
                         hint="check the endpoint and the network")
        assert "\n" not in line and len(line) < 500, line
    assert took < 15, (took, r.stderr)
    assert not (o.root / "r").exists() or not any((o.root / "r").iterdir())
    assert tree_digest(o.vault_dir) == before
    assert {k: v for k, v in store.objects.items() if "/locks/" not in k} == objects


def test_a_server_that_keeps_the_rate_is_waited_for(owned, tmp_path):
    """The bound is on the rate, not the time: a pack of 240 KB sent in pieces of 16 KiB every 0.2 s
    (80 KiB/s, three times the 1 s timeout in all) is restored whole."""
    o, url, store = owned
    add_docs(o, o.numbers[0], 1, 240_000, tmp_path / "big", act=actor(o), seed=3)
    o.run("backup", "run", url, who="bob")
    release = threading.Event()

    def steady(h: Handler, key: str) -> None:
        body = h.server.objects[key]
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(0, len(body), 16 << 10):
                h.wfile.write(body[i:i + (16 << 10)])
                release.wait(0.2)
        except OSError:
            pass

    store.hook = on_get("", lambda h, key: steady(h, key) if "/data/" in key else h.answer(200, h.server.objects[key]))
    try:
        r, took = cli(o, "backup", "restore", url.replace("timeout=2", "timeout=1"), "latest", str(o.root / "r"))
    finally:
        release.set()
    assert r.returncode == 0, r.stderr
    assert took > 3, took  # the pack did take longer than the timeout
    assert sum(p.stat().st_size for p in (o.root / "r").rglob("*") if p.is_file()) > 240_000


def test_an_upload_read_slowly_is_given_up(owned, monkeypatch):
    """A server that reads a put 32 KiB at a time, every 0.1 s — soon enough that the socket is never
    idle for the timeout — must take the whole upload within the timeout plus its length at
    ``S3_MIN_RATE`` (set to 8 MiB/s here, so 8 MiB have 1 + 1 s a try): the put fails with one
    line in three tries (before, it went on at the server's pace, 320 KiB/s: about 18 s a try)."""
    import io
    import socket

    from vault.errors import PluginError
    from vault_plugins import s3pace, s3target

    o, url, store = owned
    monkeypatch.setattr(s3pace, "S3_MIN_RATE", 8 << 20)
    release = threading.Event()

    def slow_body(self: Handler) -> bytes:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
        data, size = b"", int(self.headers.get("Content-Length", 0))
        try:
            while len(data) < size and not release.wait(0.1):
                data += self.rfile.read(min(32 << 10, size - len(data)))
        except OSError:
            pass
        self.close_connection = len(data) < size  # the client went: nothing to answer
        return data

    monkeypatch.setattr(Handler, "body", slow_body)
    store.hook = lambda h, method, key, query: h.close_connection
    target = s3target.S3Target(url.replace("timeout=2", "timeout=1"))
    start = time.monotonic()
    try:
        with pytest.raises(PluginError, match="timeout: the server took more than"):
            target.put("locks/" + "ab" * 16, io.BytesIO(os.urandom(8 << 20)))
    finally:
        release.set()
    took = time.monotonic() - start
    assert took < 3 * (1 + 1) + 3, took
