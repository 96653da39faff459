"""The office sets its own policy: signed by a supervisor, validated, never edited behind the vault's back."""

from __future__ import annotations

import tomllib




def test_office_sets_its_own_retention_years(office, tmp_path):
    number = office.create(name="Policy Co")
    f = tmp_path / "c.txt"
    f.write_text("contract")
    doc = office.add_doc(number, f)
    office.run("doc", "event", doc, "contract-fulfilled", "--date", "2026-01-01", who="bob")
    assert office.json("retention", "report", who="bob")[0]["until"] == "2036-01-01"
    text = office.run("policy", "show").stdout.replace("years = 10", "years = 30")
    new = tmp_path / "policy.toml"
    new.write_text(text)
    res = office.run("policy", "update", str(new), who="bob", ok=False)
    assert res.exit_code == 1 and "may not policy.manage" in res.stderr
    office.run("policy", "update", str(new), who="alice")
    assert office.json("retention", "report", who="bob")[0]["until"] == "2056-01-01"
    assert office.json("check")["ok"] and office.json("audit", "verify")["ok"]


def test_bad_or_ring_changing_policies_are_refused(office, tmp_path):
    data = tomllib.loads(office.run("policy", "show").stdout)
    bad = tmp_path / "bad.toml"
    bad.write_text(office.run("policy", "show").stdout.replace("years = 10", 'years = "ten"'))
    res = office.run("policy", "update", str(bad), who="alice", ok=False)
    assert res.exit_code == 1 and "years" in res.stderr
    rings = tmp_path / "rings.toml"
    rings.write_text(office.run("policy", "show").stdout.replace('roles = [\n    "supervisor",\n    "archivist",\n]',
                                                                 'roles = [\n    "supervisor",\n]'))
    assert rings.read_text() != office.run("policy", "show").stdout
    res = office.run("policy", "update", str(rings), who="alice", ok=False)
    assert res.exit_code == 1 and "rings cannot be changed" in res.stderr
    assert data["format"] == 1


def test_policy_edited_by_hand_is_rejected(office):
    p = office.vault_dir / "policy.toml"
    p.write_text(p.read_text().replace("years = 10", "years = 1"))
    # The policy in force is the history's, not the file as found; check names the edit.
    from vault.archive.vault import Vault

    assert Vault.open(office.vault_dir).policy.data["retention"][0]["years"] == 10
    res = office.run("check", ok=False)
    assert res.exit_code == 1 and "policy.toml: changed" in res.stdout and "Traceback" not in res.output


def test_init_records_the_chosen_numbering_rule_and_policy_show_prints_it(tmp_path, monkeypatch):
    """[R-3.2.2] The numbering rule is chosen at init, recorded in the system, and shown."""
    from office import Office
    from vault.store import identity

    monkeypatch.setattr(identity, "SCRYPT_WORK_FACTOR", 10)
    o = Office(tmp_path)
    (tmp_path / "pass").write_text("pw\n")
    o.keygen("alice")
    bad = o.run("init", str(o.vault_dir), "--supervisor", "alice", "--key", o.keys["alice"],
                "--numbering-option", "pattern=NO-SEQ", ok=False)
    assert bad.exit_code == 1 and "refuses these options" in bad.stderr and not o.vault_dir.exists()
    o.run("init", str(o.vault_dir), "--supervisor", "alice", "--key", o.keys["alice"],
          "--numbering", "standard", "--numbering-option", "pattern=ARC-{year}-{seq:05d}")
    shown = o.run("policy", "show").stdout
    assert "numbering rule" in shown and "ARC-{year}-{seq:05d}" in shown
    assert tomllib.loads(shown)["roles"]  # still a policy file 'policy update' accepts
    assert o.json("policy", "show")["numbering"]["options"]["pattern"] == "ARC-{year}-{seq:05d}"
    number = o.json("dossier", "create", "--type", "enterprise", "--business", "network-services", "--dept", "sales",
                    "--name", "Numbered Co", who="alice")["number"]
    assert number.startswith("ARC-") and number.endswith("-00001")
