"""The portal's web application (Starlette): invitation pages, streaming uploads, receipts.

It holds the vault's public intake key and reads invitation records; it holds no identity and has
no way to read a submission back, not even one it received a minute ago.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from vault import clock, i18n
from vault.archive.vault import Vault
from vault.errors import ConflictError, IntegrityError, LockError, NotFoundError
from vault.office import intake, invitations
from vault.archive import invitations as invitations_
from vault.archive.manifests import CATEGORIES
from vault.portal.guard import Limits, RateLimiter, SecurityHeaders
from vault.portal.upload import FormProblem, TooLarge, UploadForm, valid_boundary

LOG = logging.getLogger("vault.portal")
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread
_FEED = 256 * 1024  # body bytes handed to the parser at once (on a worker thread)


def new_receipt() -> str:
    """A receipt number a customer can read out on the phone: 60 random bits, ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


class Portal:
    """The state of one running portal: the vault (public parts only), limits, counters."""

    def __init__(self, vault_dir: Path, *, organisation: str, limits: Limits | None = None) -> None:
        self.v = Vault.open(vault_dir)
        intake.recipient(self.v)  # fail at start, not at the first customer, if there is no intake key
        self.organisation = organisation
        self.limits = limits or Limits()
        self.rate = RateLimiter(self.limits.rate_requests, self.limits.rate_window)
        self.uploads = 0
        self.busy_invitations: set[str] = set()
        self.envs = {lang: self._env(lang) for lang in i18n.LANGUAGES}
        intake.sweep_uploads(self.v, older_than=intake.STALE_UPLOAD)

    @staticmethod
    def _env(lang: str) -> Environment:
        env = Environment(loader=PackageLoader("vault.portal", "templates"), autoescape=select_autoescape(["html"]),
                          extensions=["jinja2.ext.i18n"])
        env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
        return env

    # -- rendering ---------------------------------------------------------------------------------

    def lang(self, request: Request) -> tuple[str, bool]:
        """The page language and whether the reader chose it (``?lang=``) rather than the browser."""
        chosen = request.query_params.get("lang", "")
        if chosen:
            return i18n.negotiate([chosen]), True
        return i18n.negotiate(i18n.parse_accept_language(request.headers.get("accept-language"))), False

    def page(self, request: Request, template: str, status: int = 200, *, switch_path: str | None = None,
             **ctx: Any) -> HTMLResponse:
        """``template`` in the reader's language; its language switch links to ``switch_path``, by
        default the path asked for — which only a handler of a route may leave as the default."""
        lang, chosen = self.lang(request)
        other = "en" if lang == "zh_Hans" else "zh"
        html = self.envs[lang].get_template(template).render(
            lang=lang, html_lang="zh-Hans" if lang == "zh_Hans" else "en", organisation=self.organisation,
            switch_url=f"{_local(switch_path or request.url.path)}?lang={other}", lang_query=f"?lang={'zh' if lang == 'zh_Hans' else 'en'}"
            if chosen else "", size=lambda n: i18n.format_size(n, lang), when=lambda t: i18n.format_datetime(t, lang, clock.current_zone()),
            count=lambda n: i18n.format_number(n, lang), limits=self.limits,
            # An archive number must not break at its hyphens.
            number_html=Markup('<span class="no">%s</span>') % ctx.get("number", ""), **ctx)
        return HTMLResponse(html, status_code=status)

    def problem(self, request: Request, key: str, status: int, *, switch_path: str | None = None) -> HTMLResponse:
        return self.page(request, "problem.html", status, switch_path=switch_path, key=key)

    # -- the invitation a request names ------------------------------------------------------------

    def open_invitation(self, request: Request) -> tuple[dict | None, bytes | None, HTMLResponse | None]:
        """(record, token, None) for a usable link, else (…, error page). Wrong token and unknown id
        get the same page, so the answer tells nothing to someone without the link."""
        iid = request.path_params["iid"]
        token = invitations.token_bytes(request.path_params["token"])
        try:
            rec = invitations_.load(self.v, iid)
        except NotFoundError:
            return None, None, self.problem(request, "invalid", 404)
        except IntegrityError as e:
            LOG.warning("invitation %s refused: %s", iid, e)
            return None, None, self.problem(request, "invalid", 404)
        if not self.rate.allow(iid):
            return None, None, self.problem(request, "rate", 429)
        if not invitations.token_matches(rec, token):
            return None, None, self.problem(request, "invalid", 404)
        st = invitations.state(self.v, rec)
        if st != "open":
            return None, None, self.problem(request, st, 410)
        return rec, token, None

    # -- handlers ----------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return self.page(request, "home.html")

    async def css(self, request: Request) -> Response:
        data = resources.files("vault.portal").joinpath("static", "portal.css").read_bytes()
        return Response(data, media_type="text/css")

    async def invitation(self, request: Request) -> Response:
        rec, token, err = await run_in_threadpool(self.open_invitation, request)
        if err:
            return err
        assert rec is not None and token is not None
        try:
            note = await run_in_threadpool(invitations.open_note, rec, token)
        except IntegrityError as e:
            LOG.warning("invitation %s refused: %s", rec["id"], e)
            return self.problem(request, "invalid", 404)
        left = rec["uses"] - invitations.uses_taken(self.v, rec["id"])
        return self.page(request, "invitation.html", number=rec["number"], note=note, left=left,
                         expires=clock.parse_stamp(rec["expires_at"]), today=self.v.clock.today(), categories=CATEGORIES)

    async def upload(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limits.max_body):
            # Refused before a byte of the body is read.
            return self.problem(request, "too-large" if declared.isdigit() else "form", 413 if declared.isdigit() else 400)
        rec, token, err = await run_in_threadpool(self.open_invitation, request)
        if err:
            return err
        assert rec is not None
        ctype, params = parse_options_header(request.headers.get("content-type"))
        if ctype != b"multipart/form-data" or not valid_boundary(params.get(b"boundary", b"")):
            return self.problem(request, "form", 400)
        if self.uploads >= self.limits.max_concurrent:
            return self.problem(request, "busy", 503)
        if rec["id"] in self.busy_invitations:
            return self.problem(request, "rate", 429)
        self.uploads += 1
        self.busy_invitations.add(rec["id"])
        try:
            return await self._receive(request, rec, params[b"boundary"])
        finally:
            self.uploads -= 1
            self.busy_invitations.discard(rec["id"])

    async def _receive(self, request: Request, rec: dict, boundary: bytes) -> Response:
        receipt = new_receipt()
        try:
            slot = invitations.claim_use(self.v, rec, receipt)
        except ConflictError:
            return self.problem(request, "used", 410)
        form: UploadForm | None = None
        filed = False
        try:
            form = UploadForm(self.v, boundary=boundary, max_file=self.limits.max_file, max_files=self.limits.max_files,
                              max_body=self.limits.max_body, max_submission=self.limits.max_submission)
            await self._feed(request, form)
            rows = form.rows()
            await run_in_threadpool(self._commit, rec, receipt, rows)
            filed = True
        except TooLarge as e:
            return self.problem(request, f"too-large-{e.what}", 413)
        except FormProblem as e:
            return self.problem(request, e.key, 400)
        except ClientDisconnect:
            LOG.info("upload for invitation %s cut off by the client; nothing filed", rec["id"])
            return Response(status_code=400)
        except LockError:
            return self.problem(request, "busy", 503)
        finally:
            if not filed:
                if form is not None:
                    form.discard()
                invitations.release_use(slot)
        return self.page(request, "receipt.html", receipt=receipt, number=rec["number"], files=rows,
                         at=self.v.clock.now())

    async def _feed(self, request: Request, form: UploadForm) -> None:
        pending: list[bytes] = []
        buffered = total = 0
        body = request.stream()
        span_start, span_bytes = time.monotonic(), 0
        while True:
            try:
                chunk = await asyncio.wait_for(body.__anext__(), self.limits.idle_seconds)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise ClientDisconnect() from None  # a client that stalls is treated as one that left
            span_bytes += len(chunk)
            if time.monotonic() - span_start >= self.limits.min_rate_seconds:
                if span_bytes < self.limits.min_rate_bytes:
                    # A client that drips (a byte now and then) is never idle: it is cut off like one that stalls.
                    LOG.info("upload cut off: %d bytes in %.0f s, slower than the minimum rate", span_bytes,
                             time.monotonic() - span_start)
                    raise ClientDisconnect()
                span_start, span_bytes = time.monotonic(), 0
            total += len(chunk)
            if total > self.limits.max_body:
                raise TooLarge("submission")
            pending.append(chunk)
            buffered += len(chunk)
            if buffered >= _FEED:
                # Parsing and encrypting on a worker thread keeps the event loop answering other callers.
                await run_in_threadpool(form.write, b"".join(pending))
                pending, buffered = [], 0
        if pending:
            await run_in_threadpool(form.write, b"".join(pending))
        form.finalize()

    def _commit(self, rec: dict, receipt: str, rows: list[dict]) -> None:
        source = f"customer, online platform (invitation {rec['id']}, receipt {receipt})"
        # Shared lock: an archivist's write command (which sweeps temporary files and may accept or
        # reject submissions) does not run while the records are written.
        with self.v.lock(exclusive=False):
            for row in rows:
                meta = {"title": row["filename"], "source": source, "filename": row["filename"]}
                row["sub"].commit(number=rec["number"], category=row["category"], date=row["date"],
                                  original=row["original"], meta=meta, invitation=rec["id"], receipt=receipt)

    # A path no route took is the client's own choice (``//evil.example/x`` would be a link off the
    # site): these pages switch language on the home page.

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self.problem(request, "not-found", 404, switch_path="/")

    async def not_allowed(self, request: Request, exc: Exception) -> Response:
        return self.problem(request, "not-found", 405, switch_path="/")


def _local(path: str) -> str:
    """``path`` as a link that stays on this site: one leading slash (``//host`` and ``/\\host`` lead
    elsewhere), everything else percent-encoded (a browser drops a tab or line feed from a link)."""
    return quote("/" + path.lstrip("/\\"), safe="/")


def create_app(vault_dir: Path, *, organisation: str, limits: Limits | None = None) -> Any:
    """The ASGI application for the vault at ``vault_dir``, wrapped in the security-header middleware."""
    portal = Portal(vault_dir, organisation=organisation, limits=limits)
    app = Starlette(routes=[
        Route("/", portal.home, methods=["GET"]),
        Route("/static/portal.css", portal.css, methods=["GET"]),
        Route("/i/{iid}/{token}", portal.invitation, methods=["GET"]),
        Route("/i/{iid}/{token}", portal.upload, methods=["POST"]),
    ], exception_handlers={404: portal.not_found, 405: portal.not_allowed})
    app.state.portal = portal

    async def busy(scope: Any, receive: Any, send: Any) -> None:
        await portal.problem(Request(scope, receive), "busy", 503)(scope, receive, send)

    return SecurityHeaders(app, busy=busy, max_requests=portal.limits.max_requests)
