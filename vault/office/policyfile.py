"""Changing the policy: the office sets its own retention years, review intervals and rights [R-3.3.2]."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault import clock
from vault.archive import authority, labels
from vault.errors import ConflictError, FormatError, InputError
from vault.store import make_dir, records
from vault.i18n import N_
from vault.archive.policy import DEFAULT_POLICY

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


def update(actor: Actor, path: Path) -> dict[str, Any]:
    """Replace policy.toml with the TOML file at ``path``, validated and signed by a supervisor.

    Rings cannot change here: a ring's roles decide who holds the archive's read keys, and moving
    them means re-wrapping rings and key tables, which this command does not do.
    """
    actor.require("policy.manage")
    v = actor.vault
    try:
        new = records.load_toml(Path(path), schema="policy", what=str(path))
    except FileNotFoundError:
        raise InputError(N_("{path}: no such file"), path=path) from None
    except FormatError as e:
        raise InputError.from_error(e, hint=N_("see schemas/policy.schema.json and 'vault policy show'")) from None
    new.pop("signature", None)
    if new["rings"] != v.policy.data["rings"]:
        raise ConflictError(N_("the rings cannot be changed by a policy update"),
                            hint=N_("keep the [rings] section as 'vault policy show' prints it"))
    if "policy.manage" not in new["roles"].get("supervisor", {}).get("may", []):
        raise ConflictError(N_("the supervisor role must keep policy.manage"), hint=N_("otherwise nobody could change it back"))
    if "time_zone" in new:
        clock.zone(new["time_zone"])  # a zone this machine does not know would move every "today"
    labels.check_policy(new)
    with v.lock(exclusive=True):
        signed = actor.sign(new)
        data = records.dump_toml(signed)
        # Every version is kept, immutable, as policy/<n>.toml; policy.toml is the current copy.
        n = authority.state(v)["policy_version"] + 1
        make_dir((v.root / "policy"))
        actor.commit("policy.update", {f"policy/{n}.toml": data, "policy.toml": data}, ref=str(n))
    return signed


def show(v: Vault) -> dict[str, Any]:
    """The policy in force (signature left out). Sections a policy written before they existed lacks
    are shown with the defaults the vault applies for them."""
    data = {k: val for k, val in v.policy.data.items() if k != "signature"}
    for section in ("rights", "requests"):
        data.setdefault(section, DEFAULT_POLICY[section])
    return data



