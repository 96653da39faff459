"""``vault repair``: finish or drop what interrupted commands left half done; itself safe to interrupt."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from vault.archive import audit, authority, grants, recovery, searchwrite
from vault.archive.manifests import load_manifest
from vault.errors import PermissionDeniedError
from vault.i18n import N_
from vault.store import TMP_PREFIX, fsync_dir, remove, sweep_temporaries

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


def repair(actor: Actor) -> dict[str, Any]:
    """Under the exclusive lock, which removes temporaries and finishes every commit whose entry is
    in the history (dropping those whose entry is not, ``recovery.recover`` — here over the whole
    vault, not only what the staging journal names — and removing what a
    decided or closed object leaves, ``recovery.finish``), the key release of every active grant that
    has none is written (a grant stopped after its entry), document ciphertext no manifest names and
    search-index shards no index head names are removed; then one entry ``vault.repair``, which also
    re-signs a checkpoint that an interrupted append left behind.

    Each step is idempotent: a repair stopped anywhere is finished by the next one.
    """
    v = actor.vault
    if not v.policy.may(actor.roles, "dossier.read"):  # the archive department: it holds the keys a repair needs
        actor.audit("vault.repair", outcome="refused")
        raise PermissionDeniedError(N_("{name} ({roles}) may not repair the vault"),
                                    hint=N_("a supervisor or an archivist runs 'vault repair'"), name=actor.name,
                                    roles=", ".join(actor.roles))
    with v.lock(exclusive=True):
        swept, finished = v.recovered
        # The lock looked only where the last commit said it staged; a repair walks everything
        # (temporaries and staged records an older version left beside their files, a journal lost).
        swept = [*swept, *(p.relative_to(v.root).as_posix() for p in sweep_temporaries(v.root, full=True))]
        finished = [*finished, *recovery.recover(v, full=True),
                    *recovery.finish(v, authority.state(v), dossiers=True)]
        releases = grants.reissue_releases(actor)
        shards = searchwrite.sweep_orphans(actor)
        leftovers = _unreferenced_documents(v)
        lagged = audit.checkpoint_lags(v)
        actor.audit("vault.repair")
    return {"temporaries_removed": swept, "commits_finished": finished, "checkpoint_rewritten": lagged,
            "releases_reissued": releases, "documents_removed": leftovers, "index_files_removed": shards}


def _unreferenced_documents(v: Vault) -> list[str]:
    """Ciphertext that no committed manifest names: a ``doc add`` or ``intake accept`` stopped
    before its entry. Its key may be in the key table (and in an active grant's release, refreshed
    before the entry), so it goes rather than stay readable outside the dossier."""
    out = []
    for dossier_id, d in sorted(authority.state(v)["dossiers"].items()):
        docdir = v.layout.dossier_dir(dossier_id) / "documents"
        if d.get("destroyed") or not docdir.is_dir():
            continue
        named = {f"{x.id}.age" for x in load_manifest(v, dossier_id).documents}
        gone = [n for n in sorted(os.listdir(docdir)) if n not in named and not n.startswith(TMP_PREFIX)
                and remove(docdir / n, missing_ok=True)]
        if gone:
            fsync_dir(docdir)
            out += [f"dossiers/{dossier_id}/documents/{n}" for n in gone]
    return out
