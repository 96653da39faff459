"""``vault repair``: finish or drop what interrupted commands left half done; itself safe to interrupt."""

from __future__ import annotations

from typing import Any

from vault.archive import audit, grants


def repair(actor) -> dict[str, Any]:
    """Under the exclusive lock, which removes temporaries and finishes every commit whose entry is
    in the history (dropping those whose entry is not, ``authority.recover``, and removing what a
    decided or closed object leaves, ``recovery.finish``), the key release of every active grant that
    has none is written (a grant stopped after its entry); then one entry ``vault.repair``, which
    also re-signs a checkpoint that an interrupted append left behind.

    Every step is one the next write command would take anyway, and each is idempotent: a repair
    stopped anywhere is finished by the next repair (or the next write).
    """
    actor.require("dossier.read")  # the archive department: it holds the keys a repair may need
    v = actor.vault
    with v.lock(exclusive=True):
        swept, finished = v.recovered
        releases = grants.reissue_releases(actor)
        lagged = audit.checkpoint_lags(v)
        actor.audit("vault.repair")
    return {"temporaries_removed": swept, "commits_finished": finished, "checkpoint_rewritten": lagged,
            "releases_reissued": releases}
