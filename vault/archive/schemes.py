"""The numbering scheme and classifier a vault is configured with, built through the plugin host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault import plugins
from vault.errors import PluginError
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.vault import Vault


def configured(v: Vault, family: str) -> Any:
    """The numbering scheme (``family="numbering"``) or classifier (``"classification"``) of vault ``v``."""
    cfg = v.config[family]
    # Loading entry points scans every installed distribution: once per opened vault is enough.
    pm = getattr(v, "_plugin_manager", None)
    if pm is None:
        pm = v._plugin_manager = plugins.get_plugin_manager()
    registry = plugins.numbering_schemes(pm) if family == "numbering" else plugins.classifiers(pm)
    registration = registry.get(cfg["scheme"])
    if registration is None:
        raise PluginError(N_("{family} scheme {scheme!r} is not installed"), hint=N_("see 'vault plugins list'"), family=family, scheme=cfg['scheme'])
    return registration(dict(cfg.get("options", {})))
