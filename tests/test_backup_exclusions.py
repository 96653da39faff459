"""What backups never keep: grant key releases and pending intake (both would outlive a destruction)."""

from __future__ import annotations

import pytest

from office import SALES_DESK

pytestmark = pytest.mark.office(*SALES_DESK, dossier={"name": "Excluded Co"}, doc="doc")


def test_grant_releases_and_pending_intake_are_not_backed_up(office, tmp_path):
    o, number = office, office.number
    f = tmp_path / "d.txt"
    f.write_text("doc")
    req = o.json("request", "access", number, "--purpose", "p", who="staff")["number"]
    o.run("request", "approve", req, who="head")
    o.run("grant", req, who="bob")
    o.json("intake", "submit", str(f), "--for", number, "--category", "feedback", "--source", "s",
           "--date", "2026-01-01")
    assert list((o.vault_dir / "keys" / "grants").iterdir()) and list((o.vault_dir / "intake").iterdir())
    url = f"file://{tmp_path / 'offsite'}"
    o.run("backup", "run", url)
    dest = tmp_path / "restored"
    o.run("backup", "restore", url, "latest", str(dest), who="bob")
    assert not (dest / "keys" / "grants").exists() and not (dest / "intake").exists()
    assert (dest / "grants").is_dir() and (dest / "audit" / "log.jsonl").is_file()
    res = o.run("check", "--read-data", who="bob", env={"VAULT_DIR": str(dest)})
    assert "no problems" in res.stdout
