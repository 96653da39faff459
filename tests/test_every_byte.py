"""Every changed byte named: every file of a small office vault, and of its backup target, through every mutation.

A byte flipped at the start, middle and end, the file cut in half, deleted, swapped with a sibling
of its kind, put back as its own older version: for each, ``vault check`` without a key exits
non-zero and names the file (or, for a swap, one of the two), never with a traceback. The only
files exempt are those docs/FORMAT.md §2 declares — hints, whose change changes no command's
outcome (asserted here by running the command that reads each), and unauthenticated submissions
(a changed one is another submission, which ``intake accept`` verifies). The backup target's
files go through the same mutations with ``vault backup verify``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import mutation_sweep as sweep
from vault.archive import trust
from vault.cli import cli

REPO = Path(__file__).resolve().parent.parent


def declared(kind: str) -> list[str]:
    """The patterns docs/FORMAT.md §2 lists in its table of ``kind`` files (hint | unauthenticated)."""
    text = (REPO / "docs" / "FORMAT.md").read_text()
    rows = re.findall(rf"^\| {kind} \| (.+?) \|", text, flags=re.M)
    pats = [p for row in rows for p in re.findall(r"`([^`]+)`", row)]
    return [re.sub(r"<[^>]+>", "*", p.replace("<id>", "[0-9a-f]" * 32)) for p in pats]


HINTS = declared("hint")
# Mutations that equal what an interrupted command leaves, which 'vault check' must take as such and
# name in a note, not a problem (FORMAT §18.5): the checkpoint one append behind the log it signs
# (the log still ends where it did, and a cut log is caught by the witnesses, FORMAT §18.4).
INTERRUPTED = {("audit/checkpoint.toml", "older")}
UNAUTHENTICATED = declared("submission")


def is_any(rel: str, patterns: list[str]) -> bool:
    return any(trust.match(rel, p) for p in patterns)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("sweep")
    mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
    mp.setenv("XDG_STATE_HOME", str(root / "state"))
    w = sweep.build(root, mp)
    w.root = root  # type: ignore[attr-defined]
    yield w
    mp.undo()


class Runner:
    def __init__(self, w, vault_dir: Path) -> None:
        self.w, self.vault_dir, self.cli = w, vault_dir, CliRunner()

    def __call__(self, *args: str, who: str | None = None):
        env = {"VAULT_DIR": str(self.vault_dir), "VAULT_PASSPHRASE_FILE": str(self.w.office.root / "pass"),
               "VAULT_AGENT_SOCK": str(self.w.office.root / "no-agent.sock"),
               # A fresh client each time: what one mutated run remembers must not judge the next.
               "VAULT_STATE_DIR": tempfile.mkdtemp(dir=self.w.root)}
        if who:
            env["VAULT_IDENTITY"] = str(self.w.office.ident(who))
        res = self.cli.invoke(cli, list(args), env=env)
        crash = res.exception if res.exception and not isinstance(res.exception, SystemExit) else None
        return res, crash


#: Each sweep below is this many tests, so that parallel test workers share it: shard i of n takes the
#: files at positions i, i+n, i+2n, … of the sorted list of files it sweeps, so the n shards together
#: take every file once (``test_the_shards_take_every_file_once``).
SHARDS = 8


def shard_of(rels: list[str], shard: int, shards: int = SHARDS) -> list[str]:
    return sorted(rels)[shard::shards]


def _sweep(root: Path, versions, run_check, skip=lambda rel: False,
           shard: int | None = None) -> tuple[int, list[str], list[str]]:
    """Mutate every file under ``root`` (or those of ``shard``) in place, one mutation at a time, and
    put it back.

    Returns (mutations tried, unnamed, tracebacks)."""
    current = sweep.files(root)
    tried, unnamed, crashes = 0, [], []
    rels = [rel for rel in current if not skip(rel)]
    for rel in shard_of(rels, shard, SHARDS) if shard is not None else sorted(rels):
        for name, apply in sweep.mutations(root, rel, versions, current):
            apply(root)
            try:
                res, crash = run_check()
            finally:
                touched = [rel] + ([name.split(":", 1)[1]] if name.startswith("swap:") else [])
                for t in touched:
                    (root / t).write_bytes(current[t])
            tried += 1
            if crash is not None:
                crashes.append(f"{rel} {name}: {crash!r}")
            elif (rel, name) in INTERRUPTED and res.exit_code == 0 and f"note: {rel}" in res.output:
                pass  # the state an interruption leaves, which check must take as one (named by a note)
            elif res.exit_code == 0 or not any(t in res.output for t in touched):
                unnamed.append(f"{rel} {name}: exit {res.exit_code}: {res.output.strip()[:300]}")
    assert sweep.files(root) == current  # every mutation was undone
    return tried, unnamed, crashes


def test_every_file_kind_of_format_2_is_in_the_sweep(world):
    """The world holds a file of every record and key-file kind FORMAT §2 lists (so the sweep below
    covers them all), and nothing the format does not know."""
    rels = set(sweep.files(world.office.vault_dir))
    for pattern in trust.RECORDS:
        if pattern in trust.LEGACY_RECORDS:
            continue  # written only by an earlier version (the next index write deletes it)
        assert any(trust.match(r, pattern) for r in rels), f"no {pattern} in the sweep's vault"
    unknown = [r for r in rels if not trust.is_known_file(r) and not is_any(r, HINTS)]
    assert unknown == []


def _swept_in_vault(rel: str) -> bool:
    return not is_any(rel, HINTS + UNAUTHENTICATED)


def _swept_on_target(rel: str) -> bool:
    return not rel.startswith("locks/")


def test_the_shards_take_every_file_once(world):
    """The shards of each sweep below, together: every file it sweeps, once; over 300 mutations."""
    for root, swept in ((world.office.vault_dir, _swept_in_vault), (world.target, _swept_on_target)):
        current = sweep.files(root)
        rels = [r for r in current if swept(r)]
        taken = [r for i in range(SHARDS) for r in shard_of(rels, i)]
        assert sorted(taken) == sorted(rels) and all(shard_of(rels, i) for i in range(SHARDS))
    vault = sweep.files(world.office.vault_dir)
    assert sum(len(sweep.mutations(world.office.vault_dir, r, world.versions, vault))
               for r in vault if _swept_in_vault(r)) > 300


@pytest.mark.parametrize("shard", range(SHARDS))
def test_every_mutation_of_every_vault_file_is_named_by_a_keyless_check(world, shard):
    run = Runner(world, world.office.vault_dir)
    assert run("check")[0].exit_code == 0
    tried, unnamed, crashes = _sweep(world.office.vault_dir, world.versions, lambda: run("check"),
                                     skip=lambda rel: not _swept_in_vault(rel), shard=shard)
    print(f"vault files, shard {shard + 1} of {SHARDS}: {tried} mutations")
    assert crashes == []
    assert unnamed == [], f"{len(unnamed)} of {tried} mutations not named:\n" + "\n".join(unnamed)
    assert tried > 0


# The command that reads each hint file (a counter, a number file, a lock): run after the mutation,
# it must succeed and leave a vault that checks clean, as it does on the unmutated vault.
def _reader(rel: str) -> tuple[tuple[str, ...], str]:
    w = {"index/requests": (("request", "access", "$A", "--purpose", "p"), "staff"),
         "index/destructions": (("destroy", "request", "$DOC", "--reason", "r"), "alice"),
         "index/inventories": (("paper", "inventory", "--found", "$DOC=Room 1"), "bob"),
         "index/grants": (("grant", "$REQ"), "bob"),
         "index/loans": (("paper", "lend", "$PAPER", "--to", "staff", "--request", "$REQ0", "--due", "$DUE"), "bob"),
         "index/search/sequence": (("dossier", "update", "$A", "--address", "2 Sweep Street"), "bob")}
    for k, v in w.items():
        if rel == k:
            return v
    return (("dossier", "create", "--type", "enterprise", "--business", "network-services", "--dept", "sales",
             "--name", "Hint Customer"), "bob")


def test_hint_files_change_no_outcome(world, tmp_path):
    """Each declared hint file, mutated every way: the command that reads it does what it does on
    the unmutated vault — succeeds, issues no number twice — and the vault checks clean after."""
    base = world.office.vault_dir
    hints = [r for r in sorted(sweep.files(base)) if is_any(r, HINTS)]
    assert {"index/sequence", "index/requests", "index/grants", "index/search/sequence", ".lock"} <= set(hints)
    subst = {"$A": world.numbers[0], "$DOC": world.docs[0], "$REQ": world.spare_request, "$REQ0": world.requests[0],
             "$PAPER": world.docs[4], "$DUE": sweep._in_days(7)}
    copy = tmp_path / "vault"
    failures = []
    for rel in hints:
        args, who = _reader(rel)
        args = tuple(subst.get(a, a) if not a.startswith("$DOC=") else a.replace("$DOC", world.docs[0]) for a in args)
        current = sweep.files(base)
        for name, apply in sweep.mutations(base, rel, world.versions, current):
            sweep.copy_tree(base, copy)
            apply(copy)
            run = Runner(world, copy)
            res, crash = run(*args, who=who)
            after, crash2 = run("check")
            if crash or crash2 or res.exit_code != 0 or after.exit_code != 0:
                failures.append(f"{rel} {name}: {' '.join(args)} -> {res.exit_code} {res.output.strip()[:200]}; "
                                f"check -> {after.exit_code} {after.output.strip()[:300]} {crash or crash2 or ''}")
    shutil.rmtree(copy, ignore_errors=True)
    assert failures == [], "\n".join(failures)


def test_a_changed_submission_is_named_or_refused_by_accept_never_a_traceback(world, tmp_path):
    """Pending submissions are unsigned — anyone may submit — so a changed one is another submission:
    ``vault check`` names what it can see without a key, and ``intake accept`` verifies the rest."""
    base = world.office.vault_dir
    subs = [r for r in sorted(sweep.files(base)) if is_any(r, UNAUTHENTICATED)]
    assert subs, "the sweep's vault has a pending submission"
    copy = tmp_path / "vault"
    failures = []
    current = sweep.files(base)
    for rel in subs:
        sid = Path(rel).name.split(".")[0]
        for name, apply in sweep.mutations(base, rel, world.versions, current):
            sweep.copy_tree(base, copy)
            apply(copy)
            run = Runner(world, copy)
            chk, crash = run("check")
            res, crash2 = run("intake", "accept", sid, who="bob")
            named = chk.exit_code != 0 and rel in chk.output
            refused = res.exit_code != 0 and sid in res.output and len(res.stderr.strip().splitlines()) <= 2
            if crash or crash2 or not (named or refused or res.exit_code == 0):
                failures.append(f"{rel} {name}: check {chk.exit_code} {chk.output.strip()[:200]}; accept "
                                f"{res.exit_code} {res.output.strip()[:200]} {crash or crash2 or ''}")
    assert failures == [], "\n".join(failures)


# What keyless `backup verify` cannot name yet (docs/FORMAT.md §16, "what verify names"): a
# superseded key generation deleted before the key window ends (the newer one makes it look
# expired), or a whole snapshot deleted — nothing left on the target names either.
TARGET_GAPS = (re.compile(r"keys/[^/]+/\d{8}T\d{6}Z-[0-9a-f]{64} delete:"), re.compile(r"snapshots/[0-9a-f]{64} delete:"))


@pytest.mark.parametrize("shard", range(SHARDS))
def test_every_mutation_of_the_backup_target_is_named_by_backup_verify(world, shard):
    url = f"file://{world.target}"
    run = Runner(world, world.office.vault_dir)
    assert run("backup", "verify", url, "--read-data")[0].exit_code == 0

    def verify():
        res, crash = run("backup", "verify", url, "--read-data")
        return res, crash

    tried, unnamed, crashes = _sweep(world.target, world.target_versions, verify,
                                     skip=lambda rel: not _swept_on_target(rel), shard=shard)
    print(f"target files, shard {shard + 1} of {SHARDS}: {tried} mutations")
    assert crashes == []
    # An index object is named by the hash of its bytes, which nothing else records: its deletion is
    # named by the blobs it listed, each "missing (in no pack …)".
    unnamed = [u for u in unnamed if not (u.startswith("index/") and " delete: exit 1:" in u and "in no pack" in u)]
    gaps = [u for u in unnamed if any(g.match(u) for g in TARGET_GAPS)]
    rest = [u for u in unnamed if u not in gaps]
    assert rest == [], f"{len(rest)} of {tried} mutations not named:\n" + "\n".join(rest)
    # Only those: a whole snapshot, or a key generation that a newer one of the same file supersedes.
    newest = {}
    for rel in sweep.files(world.target):
        if rel.startswith("keys/"):
            d = rel.rsplit("/", 1)[0]
            newest[d] = max(newest.get(d, ""), rel)
    superseded = [u for u in gaps if u.startswith("keys/") and u.split(" ", 1)[0] != newest[u.split(" ", 1)[0].rsplit("/", 1)[0]]]
    snapshots = [u for u in gaps if u.startswith("snapshots/")]
    assert sorted(gaps) == sorted(superseded + snapshots) and len(snapshots) <= 2, gaps
