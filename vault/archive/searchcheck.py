"""``vault check`` of the sealed search index: file shapes without the key; with it, every shard against the signed records."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault.archive import authority, manifests, searchindex, searchseal
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, PermissionDeniedError, VaultError
from vault.i18n import Message, N_
from vault.store.searchdb import entries
from vault.store.searchshards import MAX_ENTRIES
from vault.store import open_regular

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

_SHARD = re.compile(r"^\d{4}\.[0-9a-f]{8}\.age$")
_DELTA = re.compile(r"^\d{10}\.age$")
_TOP = {"recipient.toml", "head.age", "sequence"}


def check(v: Vault, actor: Actor | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) about ``index/search/``. Without ``actor`` (or when they hold no index key):
    the recipient record's signature, the names of the files and that each is an age file to one
    hybrid recipient. With it: the head's signature, every shard's hash, kind and shape, every delta,
    and that the index holds exactly the dossiers the history has — each at its newest profile
    version, with the values of its sealed profile."""
    problems: list[str] = []
    notes: list[str] = []
    d = searchseal.search_dir(v.root)
    if not d.is_dir():
        return problems, notes
    try:
        if searchseal.read_recipient(v) is None and (d / "head.age").exists():
            problems.append(Message(N_("index/search/recipient.toml: missing")))
    except VaultError as e:
        problems.append(str(e))
    for p in sorted(d.rglob("*")):
        if p.is_dir() or p.name.startswith(".tmp-") or p.name.endswith(".pending"):
            continue  # (a staged file is the history's to judge: ``authority.interrupted`` notes it)
        rel = searchseal.rel(v.root, p)
        sub = p.parent.name if p.parent != d else ""
        if (sub in ("g", "d") and _SHARD.match(p.name)) or (sub == "delta" and _DELTA.match(p.name)) \
                or (not sub and p.name in _TOP):
            if p.suffix == ".age":
                _shape(p, rel, problems)
        elif not sub and p.name == "base.age":
            notes.append(Message(N_("{rel}: the search index of an earlier version (replaced by the next find)"), rel=rel))
        elif not sub and p.name in searchseal.LEFTOVERS:
            notes.append(Message(N_("{rel}: left by an earlier version's index write (never read; 'vault repair' removes "
                                    "it)"), rel=rel))
        else:
            problems.append(Message(N_("{rel}: not a file of the search index"), rel=rel))
    if actor is None or not (d / "head.age").exists():
        return problems, notes
    try:
        idx = searchindex.open_index(actor)
    except PermissionDeniedError:
        return problems, notes  # no index key: what the directory shows was checked
    except VaultError as e:
        problems.append(str(e))
        return problems, notes
    if idx is None:
        return problems, notes
    try:
        _against_records(v, actor, idx, problems, notes)
    except VaultError as e:
        problems.append(str(e))
    return problems, notes


def _shape(p: Path, rel: str, problems: list[str]) -> None:
    try:
        with open_regular(p) as f:
            hdr = age.read_header(f)
    except (FormatError, AuthenticationError, OSError):
        problems.append(Message(N_("{rel}: not an age file (damaged)"), rel=rel))
        return
    if [s.type for s in hdr.stanzas] != ["mlkem768x25519"]:
        problems.append(Message(N_("{rel}: not encrypted to one index recipient"), rel=rel))


def _against_records(v: Vault, actor: Actor, idx: searchindex.Index, problems: list[str], notes: list[str]) -> None:
    db = idx.db
    db.load_all()  # every shard named by the head: hash, kind, number and shape
    stored = {d: (row, ents) for d, row, ents in db.rows()}
    if len(stored) != idx.count:
        problems.append(Message(N_("index/search/head.age: says {count} dossiers, the shards hold {held}"),
                                count=idx.count, held=len(stored)))
    slots = {(n << 16) | r[0] for n, s in db.d.items() for r in s.rows.values()}
    orphans = {p >> 40 for s in db.g.values() for k in s.keys() for p in s.get(k)} - slots
    if orphans:
        problems.append(Message(N_("index/search/g/: postings of {count} dossiers no dossier shard holds"),
                                count=len(orphans)))
    if db.ordered:  # the head says every key's postings are in ascending order: readers bisect them
        unordered = sum(1 for s in db.g.values() for k in s.keys() if not s.stored_in_order(k))
        if unordered:
            problems.append(Message(N_("index/search/g/: the postings of {count} keys are not in ascending order, as "
                                       "the head says"), count=unordered))
    history = authority.state(v)["dossiers"]
    held = set(stored) | set(db.overlay)
    for dossier in sorted(held - set(history)):
        notes.append(Message(N_("index/search/: dossier {dossier} is in the index and not in the history "
                                "(left by an interrupted create; dropped by the next find)"), dossier=dossier))
    for dossier, facts in sorted(history.items()):
        if facts["destroyed"]:
            if dossier in held:
                problems.append(Message(N_("index/search/: holds destroyed dossier {number}"), number=facts['number']))
            continue
        if dossier not in held:
            problems.append(Message(N_("index/search/: does not hold dossier {number} (re-indexed by the next find)"),
                                    number=facts['number']))
            continue
        m = manifests.load_manifest(v, dossier)
        p = m.profile[-1]
        info = db.info(dossier)
        assert info is not None
        want = (p.version, searchseal.sealed_digest(p.sealed or ""), p.by)
        if (info["version"], info["sealed_sha256"], info["by"]) != want:
            if info["version"] > p.version:
                notes.append(Message(N_("index/search/: dossier {number} is indexed at profile version {indexed}, "
                                        "the manifest's newest is {newest} (an interrupted update; repaired by the "
                                        "next find)"), number=m.number, indexed=info['version'], newest=p.version))
            else:
                problems.append(Message(N_("index/search/: dossier {number} is indexed at profile version {indexed}, "
                                           "the manifest's newest is {newest}"),
                                        number=m.number, indexed=info['version'], newest=p.version))
            continue
        profile = manifests.read_profile(actor, m)
        got: list[Any] = list(stored[dossier][1]) if dossier in stored and dossier not in db.overlay \
            else entries(m.number, db.overlay[dossier][2])[:MAX_ENTRIES]
        if [tuple(e) for e in got] != entries(m.number, profile)[:MAX_ENTRIES]:
            problems.append(Message(N_("index/search/: the values indexed for {number} are not its sealed profile's"),
                                    number=m.number))
