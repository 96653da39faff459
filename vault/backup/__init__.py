"""Offsite backups: content-addressed, packed, incremental snapshots that the backup host cannot read.

The public API; docs/FORMAT.md ("Backups") is the contract for what lands on a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping, Set as AbstractSet
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from vault.backup.engine import RunReport, run
from vault.backup.mirror import DEFAULT_WINDOW
from vault.backup.retention import PruneReport
from vault.backup.repo import KEYS, Repo, open_target
from vault.backup.restorer import RestoreReport
from vault.archive.backuptargets import known_targets, record_target
from vault.backup.verifier import VerifyReport
from vault.crypto import age
from vault.errors import NotFoundError, PluginError, VaultError
from vault.store import read_regular
from vault.store.counting import Progress
from vault.archive import holds, schedule
from vault.backup import mirror, restorer as _restore, retention as _prune, verifier as _verify

if TYPE_CHECKING:
    import random

    from vault.archive.vault import Vault
    from vault.plugins import VaultPluginManager
    from vault.store.identity import MemberKey

__all__ = ["run", "list_snapshots", "verify", "restore", "prune", "shred_keys", "known_targets",
           "record_target", "open_target", "protected_dossiers", "retained_records", "DEFAULT_WINDOW", "RunReport",
           "RestoreReport", "VerifyReport", "PruneReport", "ShredReport"]


def list_snapshots(target: Any, *, cache: Path | None = None, pm: VaultPluginManager | None = None) -> list[dict[str, Any]]:
    """The snapshots on ``target``, oldest first: id, time, files, bytes, bytes_new (no key needed)."""
    repo = Repo(target, cache=cache, pm=pm)
    repo.require_config()
    return [{"id": s["id"], "time": s["time"], "files": s["files"], "bytes": s["bytes"],
             "bytes_new": s["bytes_new"], "dossiers": len(s["dossiers"])} for s in repo.snapshots()]


def verify(target: Any, *, read_fraction: float = 0.0, identities: Sequence[age.Identity] | None = None,
           cache: Path | None = None, pm: VaultPluginManager | None = None, rng: random.Random | None = None, progress: Progress | None = None) -> VerifyReport:
    """Check that every object a snapshot needs is on ``target``; see ``vault.backup.verify.verify``."""
    return _verify.verify(Repo(target, cache=cache, pm=pm), read_fraction=read_fraction,
                          identities=identities, rng=rng, progress=progress)


def restore(target: Any, snapshot: str, dest: Path, identities: Sequence[age.Identity], *,
            member: MemberKey | None = None, cache: Path | None = None, pm: VaultPluginManager | None = None, progress: Progress | None = None) -> RestoreReport:
    """Rebuild ``snapshot`` (id prefix or ``latest``) into the new directory ``dest``; needs a ring member.

    :param member: the restoring member's identity (``MemberKey``): binds the restored key files to
        the restored history in one signed entry (without it, ``vault check`` names them).
    """
    return _restore.restore(Repo(target, cache=cache, pm=pm), snapshot, Path(dest), identities, member,
                            progress=progress)


def prune(target: Any, *, keep_daily: int = 0, keep_weekly: int = 0, keep_monthly: int = 0,
          keep_yearly: int = 0, protected: Iterable[str] = (),
          retained: Mapping[str, AbstractSet[str] | None] | None = None, dry_run: bool = False,
          cache: Path | None = None, pm: VaultPluginManager | None = None) -> PruneReport:
    """Forget snapshots by the keep rules (restic semantics) and delete unreferenced packs.

    :param protected: opaque dossier ids under legal hold: a snapshot holding the only copy of any of
        their data is kept whatever the rules say.
    :param retained: dossier id -> blob ids (ciphertext and manifest SHA-256) whose retention has not
        ended, or None for the whole dossier (``retained_records``): a snapshot holding the only copy
        of one of them is kept whatever the rules say.
    """
    keep = {"daily": keep_daily, "weekly": keep_weekly, "monthly": keep_monthly, "yearly": keep_yearly}
    return _prune.prune(Repo(target, cache=cache, pm=pm), keep=keep, protected=set(protected),
                        retained=retained, dry_run=dry_run)


def protected_dossiers(v: Vault) -> set[str]:
    """Dossier ids under legal hold: their data is never pruned."""
    return set(holds.held_dossiers(v))


def retained_records(v: Vault) -> dict[str, frozenset[str] | None]:
    """What retention still keeps (``vault.archive.schedule.retained_records``): never pruned."""
    return schedule.retained_records(v)


@dataclass
class ShredReport:
    """What ``shred_keys`` did on one target, for the destruction certificate."""

    target: str
    reached: bool
    removed: list[str] = field(default_factory=list)
    remirrored: list[str] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def shred_keys(target: Any, key_paths: Iterable[str | Path], *, current: Vault | None = None, pm: VaultPluginManager | None = None) -> ShredReport:
    """Remove every mirrored generation of the given key tables from ``target``.

    :param key_paths: vault-relative paths of key tables, such as ``keys/<dossier-id>.age``.
    :param current: the vault, when a table still exists after the destruction (a document was
        destroyed, not the dossier): its current generation is mirrored again so the rest of the
        dossier stays restorable. Without it the table is gone from the target.
    :return: a ``ShredReport``; ``reached`` is False (with ``error``) when the target refused a deletion
        or could not be reached — the key window then bounds how long the old keys remain.
    """
    url = target if isinstance(target, str) else getattr(target, "url", repr(target))
    rep = ShredReport(target=url, reached=False)
    tables = set()
    for p in key_paths:
        p = str(p)
        name = p[len(KEYS):] if p.startswith(KEYS) else Path(p).name
        tables.add(name)
    try:
        repo = Repo(target, pm=pm)
        gens = mirror.generations(repo)
        for table in sorted(tables):
            for g in gens.get(table, []):
                try:
                    repo.delete(g.name)
                except NotFoundError:
                    continue
                rep.removed.append(g.name)
            path = current.root / KEYS / table if current is not None else None
            if path is not None and current is not None and path.is_file():
                gen = mirror.put_generation(repo, table, read_regular(path), latest=None, now=current.clock.now())
                rep.remirrored.append(gen.name)
        rep.reached = True
    except (VaultError, PluginError, OSError) as e:
        rep.error = str(e)
    return rep

