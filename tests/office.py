"""A test office: identities, a vault, a CLI runner that plays its members, and the builder of the ``office`` fixture."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from vault.archive.vault import Actor, Vault
from vault.clock import Clock
from vault.store import identity
from vault.cli import cli

PASSPHRASE = "correct horse battery staple"

# Marker strings: customer data that must never appear in clear under the vault directory.
MARKERS = {
    "name": "Zebulon Quartzmeyer Holdings",
    "address": "742 Evergreen Terrace Marker",
    "contact": "quartz.marker@example.org",
    "phone": "+86 10 9876 5432",
    "legal_rep": "Ignatius Markerson",
    "title": "Secret Merger Title Marker",
    "content": "PLAINTEXT-CONTENT-MARKER-7f3a",
    "source": "Source Marker Channel",
}

#: A member as the ``office`` mark names one: (name, role, department).
Member = tuple[str, str, str]
#: The sales desk most procedures need: a staff member who asks and the head who approves.
SALES_DESK: tuple[Member, ...] = (("staff", "staff", "sales"), ("head", "dept-head", "sales"))
#: Two departments, each with its head and a staff member (who may see which dossier).
TWO_DEPTS: tuple[Member, ...] = tuple((f"{role}-{dept}", role if role == "staff" else "dept-head", dept)
                                      for dept in ("sales", "dev") for role in ("head", "staff"))
#: A second supervisor, for what one supervisor may not approve alone.
SAM: Member = ("sam", "supervisor", "archive")


@dataclass
class Office:
    """Runs ``vault`` commands as a named member against one vault directory, at the time of its clock.

    The clock is the machine's until a test fixes it (``at``, ``later``); every command the office
    runs and every vault handle it opens (``open``, ``actor``) takes the time from it — the command
    line as the context object a program that embeds it may pass, the library as ``Vault.open(clock=)``.
    """

    root: Path
    runner: CliRunner = field(default_factory=CliRunner)
    keys: dict[str, str] = field(default_factory=dict)
    clock: Clock = field(default_factory=Clock)

    @property
    def vault_dir(self) -> Path:
        return self.root / "vault"

    def ident(self, name: str) -> Path:
        return self.root / "ids" / f"{name}.key"

    def run(self, *args: str, who: str | None = None, ok: bool = True, env: dict | None = None):
        # No identity agent: one the developer runs at the per-user default place must not act here.
        e = {"VAULT_DIR": str(self.vault_dir), "VAULT_PASSPHRASE_FILE": str(self.root / "pass"),
             "VAULT_AGENT_SOCK": str(self.root / "no-agent.sock")}
        if who:
            e["VAULT_IDENTITY"] = str(self.ident(who))
        e.update(env or {})
        res = self.runner.invoke(cli, list(args), env=e, obj=self.clock, catch_exceptions=False)
        if ok:
            assert res.exit_code == 0, f"vault {' '.join(args)} as {who}: {res.output}"
        return res

    def json(self, *args: str, who: str | None = None):
        return json.loads(self.run(*args, "--json", who=who).stdout)

    def keygen(self, name: str) -> str:
        (self.root / "ids").mkdir(exist_ok=True)
        self.keys[name] = self.json("keygen", "--out", str(self.ident(name)))["public_key"]
        return self.keys[name]

    def add_member(self, name: str, *roles: str, dept: str) -> None:
        self.keygen(name)
        args = ["member", "add", name, "--key", self.keys[name], "--dept", dept]
        for r in roles:
            args += ["--role", r]
        self.run(*args, who="alice")

    def create(self, who: str = "bob", ctype: str = "enterprise", **fields: str) -> str:
        args = ["dossier", "create", "--type", ctype, "--business", fields.pop("business", "network-services"),
                "--dept", fields.pop("dept", "sales")]
        for k, v in fields.items():
            args += [f"--{k.replace('_', '-')}", v]
        return self.json(*args, who=who)["number"]

    def identity(self, who: str):
        return identity.load_identity(self.ident(who), PASSPHRASE)

    def open(self) -> Vault:
        """The vault through the library, at the office's clock."""
        return Vault.open(self.vault_dir, clock=self.clock)

    def actor(self, who: str = "bob") -> Actor:
        """``who`` acting through the library, as a program of theirs with their own key would."""
        return self.open().act_as(self.identity(who))

    def at(self, when: str | dt.datetime) -> None:
        """Fix the office's clock at ``when``: ISO 8601 (UTC unless it names a zone) or a datetime."""
        self.clock.set(fixed(when))

    def later(self, **delta: float) -> None:
        """Fix the office's clock ``delta`` (``hours=3``, ``days=2``) after what it says now."""
        self.clock.set(self.clock.now() + dt.timedelta(**delta))

    def add_text(self, number: str, text: str, who: str = "bob", category: str = "contract", *extra: str,
                 name: str = "doc.txt") -> str:
        """Add a document holding ``text`` (written to a file outside the vault directory first)."""
        f = self.root / "in" / name
        f.parent.mkdir(exist_ok=True)
        f.write_text(text)
        return self.add_doc(number, f, who, category, *extra)

    def add_doc(self, number: str, path: Path, who: str = "bob", category: str = "contract", *extra: str) -> str:
        # The material is dated the office's today, so it is never in the future.
        res = self.json("doc", "add", number, str(path), "--category", category, "--source", "sales desk",
                        "--date", self.clock.today(), *(extra or ("--original",)), who=who)
        return res["number"]


def make_office(tmp_path: Path, monkeypatch, now: str | dt.datetime | None = None) -> Office:
    """A vault founded by alice (supervisor) with bob (archivist); at ``now`` when given (the office's
    clock stays there until the test moves it), else at the machine's time."""
    monkeypatch.setattr(identity, "SCRYPT_WORK_FACTOR", 10)  # test seam: cheap KDF
    tmp_path.mkdir(parents=True, exist_ok=True)
    o = Office(tmp_path, clock=Clock(fixed(now) if now is not None else None))
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    o.keygen("alice")
    o.run("init", str(o.vault_dir), "--supervisor", "alice", "--key", o.keys["alice"])
    o.add_member("bob", "archivist", dept="archive")
    return o


def build_office(tmp_path: Path, monkeypatch, *members: Member, dossier: dict[str, Any] | None = None,
                 doc: str | None = None, now: str | None = None) -> Office:
    """The ``office`` fixture's office under ``tmp_path/office``: alice and bob, then ``members``,
    one dossier created by bob from ``dossier``'s fields (``office.number``) and, when ``doc`` is
    given, a contract holding that text in it (``office.doc``); all of it at ``now`` when given (the
    clock stays there for the test)."""
    o = make_office(tmp_path / "office", monkeypatch, now)
    for name, role, dept in members:
        o.add_member(name, role, dept=dept)
    if dossier is not None:
        o.number = o.create(**dossier)  # type: ignore[attr-defined]
        if doc is not None:
            o.doc = o.add_text(o.number, doc)  # type: ignore[attr-defined]
    return o


def fixed(when: str | dt.datetime) -> dt.datetime:
    """``when`` as an aware datetime: ISO 8601 text or a datetime, UTC unless it names a zone."""
    t = dt.datetime.fromisoformat(when.replace("Z", "+00:00")) if isinstance(when, str) else when
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[subprocess.CompletedProcess, bytes]:
    """Run ``vault ARGS`` in a child process whose standard error is a terminal (where progress is
    shown); its standard output stays a pipe. Returns the process and what the terminal showed."""
    master, slave = pty.openpty()
    p = subprocess.run([sys.executable, "-m", "vault", *args], env=env, stdout=subprocess.PIPE, stderr=slave,
                       timeout=timeout)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child has gone and the terminal with it
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return p, shown
