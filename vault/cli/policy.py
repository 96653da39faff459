"""Commands to read and change the policy."""

from __future__ import annotations

from pathlib import Path

import click

from vault.office import policyfile
from vault.cli import Ctx, cli, emit, json_opt
from vault.i18n import _
from vault.store.records import dump_toml


@cli.group("policy")
def policy_grp() -> None:
    """The policy: roles and rights, retention schedules, review intervals, completeness rules."""


@policy_grp.command("show")
@json_opt
@click.pass_obj
def policy_show(obj: Ctx, as_json: bool) -> None:
    """Print the policy in force (as TOML, or JSON)."""
    data = policyfile.show(obj.vault)
    rule = obj.vault.config["numbering"]
    # The numbering rule is fixed in vault.toml at init; printed as comments so that the
    # output stays a policy file 'vault policy update' accepts.
    opts = ", ".join(f"{k} = {v!r}" for k, v in sorted(rule.get("options", {}).items()))
    head = "# " + _("numbering rule (vault.toml, fixed at init) [R-3.2.2]: scheme {scheme!r}").format(
        scheme=rule["scheme"]) + (_(", options: {options}").format(options=opts) if opts else "") + "\n"
    emit({**data, "numbering": rule} if as_json else data, as_json, lambda d: head + dump_toml(d).decode().rstrip())


@policy_grp.command("update")
@click.argument("file", type=click.Path(dir_okay=False))
@json_opt
@click.pass_obj
def policy_update(obj: Ctx, file: str, as_json: bool) -> None:
    """Replace the policy with FILE (validated, signed by you; supervisors only)."""
    policyfile.update(obj.actor(), Path(file))
    emit({"updated": True}, as_json, _("policy updated"))
