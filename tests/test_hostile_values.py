"""Values that parse but make no sense: refused at once instead of accepted and regretted later."""

from __future__ import annotations

import pytest

from test_hostile_cli import assert_refused_cleanly, digest


pytestmark = pytest.mark.office(dossier={"name": "Values Customer"})


@pytest.mark.parametrize("blank", [" ", "\t", " \n "])
def test_a_blank_customer_name_is_refused(office, blank):
    before = digest(office.vault_dir)
    res = office.run("dossier", "create", "--type", "individual", "--business", "b", "--dept", "sales",
                     "--name", blank, who="bob", ok=False)
    assert_refused_cleanly(res, "create")
    assert "name" in res.stderr
    res = office.run("dossier", "update", office.number, "--name", blank, who="bob", ok=False)
    assert_refused_cleanly(res, "update")
    assert digest(office.vault_dir) == before


@pytest.mark.parametrize("where", ["vault", "vault/backups", "link"])
def test_a_backup_target_inside_the_vault_is_refused(office, tmp_path, where):
    if where == "link":  # a link from outside into the vault is the vault too
        (tmp_path / "link").symlink_to(office.vault_dir / "dossiers")
        path = tmp_path / "link"
    else:
        path = office.root / where
    before = digest(office.vault_dir)
    res = office.run("backup", "run", f"file://{path}", ok=False)
    assert_refused_cleanly(res, where)
    assert "inside the vault" in res.stderr
    assert digest(office.vault_dir) == before
