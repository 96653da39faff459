"""Member commands: add (with a display name in any script), list, show, rename, remove."""

from __future__ import annotations

import click

from vault.archive import labels, members
from vault.cli import Ctx, cell, cli, emit, json_opt, one_line, pad, render, state
from vault.cli.core import public_key, with_key_opts
from vault.office import membership
from vault.i18n import _
from vault.store import names


@cli.group()
def member() -> None:
    """Members of the vault and their roles."""


@member.command("add")
@click.argument("name")
@with_key_opts
@click.option("--role", "roles", multiple=True, required=True, help="Role (repeatable).")
@click.option("--dept", required=True, help="The member's department (its id or its name in the policy).")
@click.option("--display-name", help="The member's name as people write it, in any script (NAME is then the id).")
@json_opt
@click.pass_obj
def member_add(obj: Ctx, name: str, key: str | None, key_file: str | None, roles: tuple[str, ...], dept: str,
               display_name: str | None, as_json: bool) -> None:
    """Add a member (supervisor only). NAME is an id (zhangsan) or, without --display-name, the
    name as people write it (张三), for which an id is made."""
    rec = membership.add_member(obj.actor(), name, public_key(key, key_file), roles, dept, display_name)
    emit({"name": rec["name"], "display_name": rec.get("display_name"), "roles": rec["roles"], "dept": rec["dept"]},
         as_json, _("added member {name}").format(name=names.shown(rec["name"], rec.get("display_name"))))


@member.command("list")
@json_opt
@click.pass_obj
def member_list(obj: Ctx, as_json: bool) -> None:
    """List members (no key needed)."""
    pol = obj.vault.policy.data
    rows = [{k: r[k] for k in ("name", "display_name", "roles", "dept", "status")}
            for r in members.all_members(obj.vault).values()]
    emit(rows, as_json, lambda rs: "\n".join(one_line(
        f"{pad(r['name'], 16)} {pad(r['display_name'] or '', 16)} {cell(state(r['status']), 8)} "
        f"{pad(labels.label(pol, 'department', r['dept']), 12)} {','.join(r['roles'])}") for r in rs))


@member.command("show")
@click.argument("name")
@click.option("--key", "key_only", is_flag=True, help="Print only the member's public key line.")
@json_opt
@click.pass_obj
def member_show(obj: Ctx, name: str, key_only: bool, as_json: bool) -> None:
    """Show a member by id or display name: roles, department, status, public key (no key needed)."""
    rec = members.all_members(obj.vault)[members.resolve_member(obj.vault, name)]
    data = {k: rec[k] for k in ("name", "display_name", "roles", "dept", "status", "added_at", "added_by",
                                "removed_at", "removed_by", "key") if k in rec}
    if not as_json:
        data["dept"] = labels.label(obj.vault.policy.data, "department", data["dept"])
    emit({"key": rec["key"]} if key_only else data, as_json, rec["key"] if key_only else render(data))


@member.command("rename")
@click.argument("name")
@click.option("--display-name", required=True, help="The member's new name as people write it.")
@json_opt
@click.pass_obj
def member_rename(obj: Ctx, name: str, display_name: str, as_json: bool) -> None:
    """Give a member (by id or display name) a new display name; their id never changes."""
    name = members.resolve_member(obj.vault, name)
    rec = membership.rename_member(obj.actor(), name, display_name)
    emit({"name": name, "display_name": rec["display_name"]}, as_json,
         _("renamed {name}").format(name=names.shown(name, rec["display_name"])))


@member.command("remove")
@click.argument("name")
@json_opt
@click.pass_obj
def member_remove(obj: Ctx, name: str, as_json: bool) -> None:
    """Remove a member (by id or display name): rotate their rings and re-wrap key tables."""
    name = members.resolve_member(obj.vault, name)
    rewrapped = membership.remove_member(obj.actor(), name)
    emit({"removed": name, "rewrapped": rewrapped}, as_json,
         _("removed {name}; re-wrapped {count} key tables").format(name=members.shown(obj.vault, name),
                                                                   count=len(rewrapped)))
