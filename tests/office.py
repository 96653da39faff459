"""A test office: identities, a vault, and a CLI runner that plays its members (shared by vault tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from vault import clock
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


@dataclass
class Office:
    """Runs ``vault`` commands as a named member against one vault directory."""

    root: Path
    runner: CliRunner = field(default_factory=CliRunner)
    keys: dict[str, str] = field(default_factory=dict)

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
        res = self.runner.invoke(cli, list(args), env=e, catch_exceptions=False)
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

    def add_doc(self, number: str, path: Path, who: str = "bob", category: str = "contract", *extra: str) -> str:
        # The material is dated the vault's today (the clock seam), so it is never in the future.
        res = self.json("doc", "add", number, str(path), "--category", category, "--source", "sales desk",
                        "--date", clock.today(), *(extra or ("--original",)), who=who)
        return res["number"]


def make_office(tmp_path: Path, monkeypatch) -> Office:
    """A vault founded by alice (supervisor) with bob (archivist)."""
    monkeypatch.setattr(identity, "SCRYPT_WORK_FACTOR", 10)  # test seam: cheap KDF
    tmp_path.mkdir(parents=True, exist_ok=True)
    o = Office(tmp_path)
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    o.keygen("alice")
    o.run("init", str(o.vault_dir), "--supervisor", "alice", "--key", o.keys["alice"])
    o.add_member("bob", "archivist", dept="archive")
    return o
