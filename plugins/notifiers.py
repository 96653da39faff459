"""Built-in notifiers ``report`` (one text file per department in a directory) and ``smtp`` (one mail per department)."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable, Mapping

from vault import clock
from vault.errors import PluginError
from vault.i18n import _, N_
from vault.hookspecs import hookimpl
from vault.store import write_atomic

_DEPT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")


def _department(name: str) -> str:
    # Department names become file names and mail headers: refuse anything that could climb out
    # of the report directory or inject a header line.
    if not isinstance(name, str) or not _DEPT.match(name) or name in (".", ".."):
        raise PluginError(N_("bad department name {name!r}"), name=name)
    return name


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class ReportNotifier:
    """Writes ``review-<date>-<department>.txt`` into ``options["dir"]``, replacing one of the same day
    (the date of ``at``, the time of the run, in the office's zone)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        if not options.get("dir"):
            raise PluginError(N_("the report notifier needs a directory"), hint=N_("pass --report-dir DIR"))
        self.dir = Path(options["dir"])
        if not self.dir.is_dir():
            raise PluginError(N_("{dir} is not a directory"), hint=N_("create it first, or pass another --report-dir"), dir=self.dir)

    def notify(self, *, department: str, subject: str, body: str, at: dt.datetime | None = None,
               **kwargs: Any) -> None:
        path = self.dir / f"review-{clock.Clock(at).today()}-{_department(department)}.txt"
        # A report file is read by people: its two header lines are in the language of the message.
        text = (_("To: department {department}").format(department=department) + "\n"
                + _("Subject: {subject}").format(subject=_one_line(subject)) + f"\n\n{body}")
        write_atomic(path, text.encode("utf-8"), mode=0o600)


class SmtpNotifier:
    """Sends one plain-text mail per department with ``smtplib``.

    Options: ``host`` (default ``localhost``), ``port`` (default 25, or 587 with STARTTLS), ``from``
    (required), ``to`` (department -> address; ``"*"`` is the address for departments not named),
    ``starttls`` (default off), ``user`` and ``password`` (optional login, after STARTTLS), ``timeout``
    (seconds, default 30).
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.host = options.get("host") or "localhost"
        self.starttls = bool(options.get("starttls", False))
        self.port = int(options.get("port") or (587 if self.starttls else 25))
        self.sender = options.get("from")
        self.to = dict(options.get("to") or {})
        self.user, self.password = options.get("user"), options.get("password")
        self.timeout = float(options.get("timeout", 30))
        if not self.sender:
            raise PluginError(N_("the smtp notifier needs a sender address"), hint=N_("pass --from ADDRESS"))
        if not self.to:
            raise PluginError(N_("the smtp notifier needs department addresses"),
                             hint=N_("pass --to DEPT=ADDRESS (repeatable) or --to ADDRESS for every department"))

    def address(self, department: str) -> str:
        addr = self.to.get(department) or self.to.get("*")
        if not addr:
            raise PluginError(N_("smtp: no address for department {department}"),
                              hint=N_("pass --to {department}=ADDRESS, or --to ADDRESS for every department"), department=department)
        return addr

    def notify(self, *, department: str, subject: str, body: str, at: dt.datetime | None = None,
               **kwargs: Any) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = self.address(_department(department))
        msg["Subject"] = _one_line(subject)
        msg["Date"] = email.utils.format_datetime(clock.Clock(at).now())
        msg["Message-ID"] = email.utils.make_msgid(domain="vault.invalid")
        msg.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            reason = _one_line(str(exc))[:200] or type(exc).__name__
            raise PluginError(N_("smtp: cannot send to {host}:{port} for department {department}: {reason}"),
                              hint=N_("check --smtp-host, --smtp-port and the addresses; nothing later was sent"), host=self.host, port=self.port, department=department, reason=reason) from None


@hookimpl
def vault_register_notifiers(register: Callable[[str, Any], None]) -> None:
    register("report", ReportNotifier)
    register("smtp", SmtpNotifier)
