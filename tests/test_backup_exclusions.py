"""What backups never keep: grant key releases and pending intake (both would outlive a destruction)."""

from __future__ import annotations

from office import make_office


def test_grant_releases_and_pending_intake_are_not_backed_up(tmp_path, monkeypatch):
    o = make_office(tmp_path, monkeypatch)
    o.add_member("staff", "staff", dept="sales")
    o.add_member("head", "dept-head", dept="sales")
    number = o.create(name="Excluded Co")
    f = tmp_path / "d.txt"
    f.write_text("doc")
    o.add_doc(number, f)
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
