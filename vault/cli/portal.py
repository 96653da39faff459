"""Commands for the customers' online platform [R-3.1.2]: ``vault portal serve``."""

from __future__ import annotations

import logging
import re
import socket
import sys
from pathlib import Path

import click

from vault.cli import Ctx, cli
from vault.errors import InputError
from vault.i18n import _, N_

_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9a-fA-F:]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})\Z")


def parse_listen(text: str) -> tuple[str, int]:
    m = _LISTEN.match(text)
    if not m or not 0 < int(m.group("port")) < 65536:
        raise InputError(N_("bad listen address {text!r}"), hint=N_("use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"), text=text)
    return m.group("v6") or m.group("host"), int(m.group("port"))


def _check_free(host: str, port: int) -> None:
    # uvicorn reports a taken port in a log line and exits; say it the vault's way before starting.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise InputError(N_("cannot listen on {host}:{port}: {strerror}"),
                             hint=N_("choose another --listen address or stop what uses it"), host=host, port=port, strerror=e.strerror) from None


@cli.group("portal")
def portal_grp() -> None:
    """The online platform where customers submit material through an invitation link."""


@portal_grp.command("serve")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to listen on (put a TLS reverse proxy in front).")
@click.option("--organisation", envvar="VAULT_PORTAL_ORG", required=True, help="Your company's name, shown on every page (env VAULT_PORTAL_ORG).")
@click.option("--max-file-mb", default=200, show_default=True, type=click.IntRange(1, 100_000), help="Largest file, in MB (1 MB = 1,000,000 bytes).")
@click.option("--max-submission-mb", default=500, show_default=True, type=click.IntRange(1, 1_000_000), help="Largest submission (all its files), in MB.")
@click.option("--max-files", default=5, show_default=True, type=click.IntRange(1, 20), help="Files in one submission.")
@click.option("--max-uploads", default=4, show_default=True, type=click.IntRange(1, 1000), help="Uploads in progress at once; more are refused.")
@click.option("--rate-limit", default="30/600", show_default=True, help="Requests per invitation link per seconds (N/SECONDS).")
@click.option("--idle-timeout", default=60, show_default=True, type=click.IntRange(1, 3600), help="Seconds an upload may send nothing before it is cut off.")
@click.option("--header-timeout", default=10, show_default=True, type=click.IntRange(1, 600), help="Seconds a connection may take to send a request's headers, from its start or the last answer, before it is closed.")
@click.option("--min-upload-rate", default="100/60", show_default=True, help="Slowest upload not cut off: kB (1 kB = 1,000 bytes) in each span of SECONDS (KB/SECONDS).")
@click.pass_obj
def portal_serve(obj: Ctx, listen: str, organisation: str, max_file_mb: int, max_submission_mb: int, max_files: int,
                 max_uploads: int, rate_limit: str, idle_timeout: int, header_timeout: int, min_upload_rate: str) -> None:
    """Serve the portal for this vault. It needs no identity and can read nothing back."""
    try:
        import uvicorn

        from vault.portal.app import create_app
        from vault.portal.guard import MB, Limits, http_protocol
    except ImportError as e:
        raise InputError(N_("the portal needs a package that is not installed ({name})"),
                         hint=N_("install vault with the portal extra: pip install 'vault[portal]'"), name=e.name) from None
    host, port = parse_listen(listen)
    m = re.match(r"(\d{1,6})/(\d{1,6})\Z", rate_limit)
    if not m or not int(m.group(1)) or not int(m.group(2)):
        raise InputError(N_("bad --rate-limit {rate_limit!r}"), hint=N_("use REQUESTS/SECONDS, e.g. 30/600"), rate_limit=rate_limit)
    r = re.match(r"(\d{1,6})/(\d{1,4})\Z", min_upload_rate)
    if not r or not int(r.group(2)):
        raise InputError(N_("bad --min-upload-rate {min_upload_rate!r}"), hint=N_("use KB/SECONDS, e.g. 100/60"),
                         min_upload_rate=min_upload_rate)
    limits = Limits(max_file=max_file_mb * MB, max_submission=max_submission_mb * MB, max_files=max_files,
                    max_concurrent=max_uploads, rate_requests=int(m.group(1)), rate_window=int(m.group(2)),
                    idle_seconds=idle_timeout, header_seconds=header_timeout, min_rate_bytes=int(r.group(1)) * 1000,
                    min_rate_seconds=int(r.group(2)))
    _check_free(host, port)
    app = create_app(Path(obj.vault.root), organisation=organisation, limits=limits)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    click.echo(_("vault portal: serving {root} on http://{listen} (no identity held)").format(
        root=obj.vault.root, listen=listen), err=True)
    # uvicorn's own access log would write the one-time token in each request path: ours redacts it.
    # Its limit_concurrency is not used: it counts every open connection, so silent ones would shut
    # everyone out; the portal counts requests in progress (Limits.max_requests) and closes a
    # connection that sends no headers (Limits.header_seconds).
    uvicorn.run(app, host=host, port=port, access_log=False, server_header=False, proxy_headers=True,
                http=http_protocol(limits.header_seconds), timeout_keep_alive=5, log_level="warning")
