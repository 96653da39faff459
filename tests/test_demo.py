"""`vault demo`: the sample office a newcomer starts from works end to end."""

from __future__ import annotations

import json

from click.testing import CliRunner

from vault.cli import cli


def test_demo_builds_an_office_that_checks_out(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["demo", str(tmp_path / "office")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "try next:" in res.stdout and "passphrase: demo" in res.stdout
    (tmp_path / "pass").write_text("demo\n")
    env = {"VAULT_DIR": str(tmp_path / "office" / "vault"), "VAULT_PASSPHRASE_FILE": str(tmp_path / "pass"),
           "VAULT_IDENTITY": str(tmp_path / "office" / "identities" / "bob.key")}

    def run(*args, who="bob"):
        e = dict(env, VAULT_IDENTITY=str(tmp_path / "office" / "identities" / f"{who}.key"))
        r = runner.invoke(cli, [*args, "--json"], env=e, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    dossiers = run("dossier", "list")
    assert {d["customer_type"] for d in dossiers} == {"enterprise", "individual"} and len(dossiers) == 4
    assert {d["category"] for d in run("doc", "list", dossiers[0]["number"])} == {
        "basic-info", "contract", "service-record", "communication", "feedback", "other"}
    assert run("check", "--read-data")["ok"] and run("audit", "verify")["ok"]
    assert [g["state"] for g in run("grant", "list")] == ["active"]
    assert run("destroy", "certificate", "D-000001")["approved_by"] == "sam"
    assert len(run("intake", "list")) == 1
    assert len(run("backup", "list", f"file://{tmp_path / 'office' / 'offsite'}")) == 1
    assert run("find", "--name", "northwind networks ltd")[0]["number"] == dossiers[0]["number"]
    assert run("find", "northwind")[0]["number"] == dossiers[0]["number"]
    assert [d["customer_type"] for d in run("find", "min zhang", "--type", "individual")] == ["individual"]
    again = runner.invoke(cli, ["demo", str(tmp_path / "office")])
    assert again.exit_code == 1 and "not empty" in again.stderr
