"""Every write command, stopped at every durable step: the vault is never left in a state that is
wrong and unreported, the next run (or one ``vault repair``) finishes it, nothing acknowledged is
lost, no number is reused, and no interruption hands a key to someone who should not have it.

The store's crash seam (``vault.store.seam``) numbers the durable steps of a command (file created,
fsync, rename, unlink, directory made, audit append). For each command a counting run lists its
steps; then the command runs once per distinct point on a fresh copy of its starting vault and is
stopped just before that step (``os._exit``, as ``kill -9``); ``crash_harness.distinct_points``
says why stopping before every step but fsyncs and the renames of complete temporaries reaches
every state a stop can leave. A second sweep fills the disk from each step on instead.

After each stop: ``vault check`` runs (no traceback; clean, or what it names is finished by
``vault repair`` on a copy of the stopped state, after which it is clean — and for adds, accepts,
creates, grants and removals repair also clears what check only notes); then the same command runs
again (it succeeds, or says in one line that what it does is done) and ``vault check`` is clean
(with ``--read-data`` where the command moves keys). The history before the command is still the
history's prefix; no number is issued twice; the security properties hold both in the stopped state
and after the retry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from crash_harness import copy_tree, distinct_points, env_for, in_parallel, run_cli
from office import MARKERS, PASSPHRASE, make_office
from vault.archive import authority, members
from vault.archive.vault import Vault
from vault.crypto import age
from vault.errors import NoIdentityMatchError, VaultError
from vault.store import identity, seam

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(hours=1)
# Points run in forked workers, two at a time on a machine with two cores; under pytest-xdist the
# cores already run other tests (each xdist worker takes its own shards below), so one at a time.
WORKERS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1))


@dataclass
class Cmd:
    """A write command as the test runs it: its argv, who runs it, and what a retry may say."""

    name: str
    argv: list[str]
    who: str | None
    again: str = r"$^"  # what the retry may refuse with, once the first run went through
    at: dt.datetime = T1
    base: str = "office"
    props: tuple[str, ...] = ()  # leaver:NAME, releases, accept: what _security checks; leftovers: see _point
    thin: str | None = None  # steps on paths matching this: only every THIN_EVERY-th, the first and the last


class Base:
    """The prepared starting trees (built once), and what the commands refer to in them."""

    def __init__(self, root: Path, ids: Path) -> None:
        self.root, self.ids = root, ids
        self.refs: dict[str, str] = {}
        self.trees: dict[str, Path] = {}
        self.leaver_ids: dict[str, list] = {}
        self.scratch = root


def _build(tmp: Path, monkeypatch) -> Base:
    o = make_office(tmp / "office", monkeypatch, now=T0)
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp / "office" / "state"))
    o.add_member("carl", "archivist", dept="archive")      # leaves: holds the archive ring
    o.add_member("sam", "supervisor", dept="archive")      # approves destructions
    o.add_member("staff", "staff", dept="sales")
    o.add_member("stella", "staff", dept="sales")          # leaves: holds a grant
    o.add_member("head", "dept-head", dept="sales")
    o.add_member("olga", "operator", dept="it")
    refs: dict[str, str] = {}
    f = tmp / "inputs" / "c.txt"
    f.parent.mkdir(parents=True)
    f.write_text(MARKERS["content"])
    refs["big"] = str(tmp / "inputs" / "big.bin")
    # Over two of DirectWriter's stages: the large add's direct writes, written behind, are swept too.
    Path(refs["big"]).write_bytes(os.urandom(9 << 20))
    refs["file"] = str(f)
    refs["A"] = o.create(name=MARKERS["name"], contact=MARKERS["contact"])
    refs["B"] = o.create(name="Held Customer")
    refs["C"] = o.create(name="Customer To Approve")
    refs["D"] = o.create(name="Customer To Destroy")
    refs["E"] = o.create(name="Customer To Request")
    refs["docA"] = o.add_doc(refs["A"], f, "bob", "contract", "--original", "--paper-location", "Room 1")
    refs["letterA"] = o.add_doc(refs["A"], f, "bob", "communication", "--original")
    o.add_doc(refs["D"], f, "bob", "contract")

    def req(who: str, number: str, approve: bool = True) -> str:
        no = o.json("request", "access", number, "--purpose", "meeting", who=who)["number"]
        if approve:
            o.run("request", "approve", no, who="head")
        return no

    refs["R_pending"] = req("staff", refs["A"], approve=False)
    refs["R_approved"] = req("staff", refs["A"])
    r = req("stella", refs["A"])
    refs["G_stella"] = o.json("grant", r, "--hours", "240", who="bob")["number"]
    r = req("staff", refs["B"])
    refs["G_short"] = o.json("grant", r, "--hours", "2", who="bob")["number"]
    r = req("staff", refs["A"])
    refs["L_out"] = o.json("paper", "lend", refs["letterA"], "--to", "staff", "--request", r,
                           "--due", "2026-03-20", who="bob")["number"]
    o.run("hold", "add", refs["B"], "--reason", "litigation", who="bob")
    refs["D_requested"] = o.json("destroy", "request", refs["C"], "--reason", "erasure asked", who="alice")["number"]
    refs["D_approved"] = o.json("destroy", "request", refs["D"], "--reason", "erasure asked", who="alice")["number"]
    o.run("destroy", "approve", refs["D_approved"], "--override-retention", "customer asked", who="sam")
    sub = ["intake", "submit", str(f), "--for", refs["A"], "--category", "feedback", "--source", "s",
           "--date", o.clock.today(), "--title", MARKERS["title"]]
    refs["S_accept"] = o.json(*sub)["ids"][0]
    refs["S_reject"] = o.json(*sub)["ids"][0]
    pol = tmp / "inputs" / "policy.toml"
    pol.write_text(o.run("policy", "show").stdout.replace("years = 10", "years = 30"))
    refs["policy"] = str(pol)
    base = Base(tmp / "office", tmp / "office" / "ids")
    base.refs = refs
    (base.ids / "pass").write_text(PASSPHRASE + "\n")
    # What a leaver could have kept: their own identity and the rings they could open.
    v = o.open()
    for who in ("carl", "stella"):
        key = identity.load_identity(o.ident(who), PASSPHRASE)
        rings = [members.unlock_ring(v, r, key) for r in v.policy.rings_for(members.all_members(v)[who]["roles"])]
        base.leaver_ids[who] = [key.age_identity(), *rings]
    base.trees["office"] = tmp / "trees" / "office"
    _snapshot(o.root, base.trees["office"])
    # Backups: a second starting tree with two snapshots on a target of its own.
    copy_tree(base.trees["office"], tmp / "trees" / "backup")
    base.trees["backup"] = tmp / "trees" / "backup"
    bt = base.trees["backup"]
    for day in (T0, T0 + dt.timedelta(days=1)):
        res = run_cli(["backup", "run", f"file://{bt / 'target'}", "--json"], env_for(bt, base.ids, None), at=day,
                      workdir=bt)
        assert res.code == 0, res.stderr
    # A third: the sharded search index built, which a member removal re-seals to a new key.
    base.trees["indexed"] = tmp / "trees" / "indexed"
    copy_tree(base.trees["office"], base.trees["indexed"])
    it = base.trees["indexed"]
    res = run_cli(["index", "rebuild"], env_for(it, base.ids, "bob"), at=T0, workdir=it)
    assert res.code == 0, res.stderr
    # Repair starts from what three interrupted commands left: a grant stopped after its entry (no
    # key release), a document add and a dossier create stopped before theirs (leftovers).
    base.trees["repair"] = tmp / "trees" / "repair"
    copy_tree(base.trees["office"], base.trees["repair"])
    for who, argv, after_entry in (
            ("bob", ["grant", refs["R_approved"], "--hours", "24"], True),
            ("bob", ["doc", "add", refs["A"], refs["file"], "--category", "contract", "--source", "desk",
                     "--date", T0.date().isoformat(), "--original"], False),
            ("bob", ["dossier", "create", "--type", "enterprise", "--business", "network-services", "--dept", "sales",
                     "--name", "Half Customer"], False)):
        _stop_at_entry(base, base.trees["repair"], who, argv, after=after_entry)
    # Init starts from nothing but an identity.
    base.trees["empty"] = tmp / "trees" / "empty"
    (base.trees["empty"] / "state").mkdir(parents=True)
    refs["alice_key"] = o.keys["alice"]
    return base


def _stop_at_entry(base: Base, tree: Path, who: str, argv: list[str], *, after: bool) -> None:
    """Run ``argv`` on ``tree`` and stop it just before its history entry, or at its first step after."""
    trial = tree.parent / (tree.name + "-trial")
    copy_tree(tree, trial)
    steps = run_cli(argv, env_for(trial, base.ids, who), trace=True, at=T1, workdir=trial).steps or []
    shutil.rmtree(trial)
    k = next(i for i, (kind, _) in enumerate(steps, 1) if kind == "append")
    if after:
        k = next(i for i, (kind, _) in enumerate(steps, 1) if i > k and kind not in ("fsync", "sync"))
    assert run_cli(argv, env_for(tree, base.ids, who), crash_at=k, at=T1, workdir=tree).crashed


def _snapshot(office_root: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    copy_tree(office_root / "vault", dst / "vault")
    copy_tree(office_root / "state", dst / "state")


def commands(r: dict[str, str]) -> list[Cmd]:
    done = r"already|is not pending|no intake submission|not approved|is (executed|approved|closed)|" \
           r"no active member|not on hold|no (open )?hold|is not out|was returned|already closed"
    return [
        Cmd("init", ["init", "{root}/vault", "--supervisor", "alice", "--key", r["alice_key"]], None, base="empty",
            again=r"exists and is not empty"),
        Cmd("member-add", ["member", "add", "dora", "--key", "{dora_key}", "--role", "archivist", "--dept", "archive"],
            "alice", again=r"already exists"),
        Cmd("member-remove-ring", ["member", "remove", "carl"], "alice", again=r"no active member",
            props=("leaver:carl", "leftovers")),
        Cmd("member-remove-grantee", ["member", "remove", "stella"], "alice", again=r"no active member",
            props=("leaver:stella", "releases")),
        # The index's 512 shards are written alike: a sample of them, every other step in full (a
        # shard is staged through a temporary in the work directory named after it: <n>.<gen>.age).
        Cmd("member-remove-indexed", ["member", "remove", "carl"], "alice", again=r"no active member",
            base="indexed", props=("leaver:carl", "leftovers"),
            thin=r"/index/search/[gd]/|/\.tmp-writes/\.tmp-[0-9a-f]+\.[0-9a-f]+\.age\.pending\.[0-9a-f]+$"),
        Cmd("dossier-create", ["dossier", "create", "--type", "enterprise", "--business", "network-services",
                               "--dept", "sales", "--name", "New Customer"], "bob", props=("leftovers",)),
        Cmd("dossier-update", ["dossier", "update", r["A"], "--address", MARKERS["address"]], "bob",
            again=r"nothing changed"),
        Cmd("doc-add", ["doc", "add", r["A"], r["file"], "--category", "contract", "--source", "desk",
                        "--date", T0.date().isoformat(), "--original"], "bob", props=("releases", "leftovers")),
        Cmd("doc-add-big", ["doc", "add", r["A"], r["big"], "--category", "contract", "--source", "desk",
                            "--date", T0.date().isoformat(), "--original"], "bob", props=("releases", "leftovers")),
        Cmd("request", ["request", "access", r["E"], "--purpose", "audit"], "staff"),
        Cmd("decide", ["request", "approve", r["R_pending"]], "head", again=done),
        Cmd("grant", ["grant", r["R_approved"], "--hours", "24"], "bob", again=done, props=("releases", "leftovers")),
        Cmd("revoke", ["grant", "revoke", r["G_stella"]], "bob", again=done, props=("releases",)),
        Cmd("sweep", ["grant", "sweep"], "olga", at=T0 + dt.timedelta(days=3), props=("releases",)),
        Cmd("hold-add", ["hold", "add", r["A"], "--reason", "audit"], "bob", again=done),
        Cmd("hold-lift", ["hold", "remove", r["B"], "--reason", "settled"], "alice", again=done),
        Cmd("destroy-request", ["destroy", "request", r["E"], "--reason", "erasure asked"], "alice"),
        Cmd("destroy-approve", ["destroy", "approve", r["D_requested"], "--override-retention", "asked"], "sam",
            again=done),
        Cmd("destroy-execute", ["destroy", "execute", r["D_approved"]], "alice", again=done, props=("releases",)),
        Cmd("intake-submit", ["intake", "submit", r["file"], "--for", r["A"], "--category", "feedback",
                              "--source", "s", "--date", T0.date().isoformat()], None),
        Cmd("intake-accept", ["intake", "accept", r["S_accept"]], "bob", again=done, props=("accept", "leftovers")),
        Cmd("intake-reject", ["intake", "reject", r["S_reject"], "--reason", "spam"], "bob", again=done),
        Cmd("review-done", ["review", "done", r["A"], "--needs-update", "--note", "the address moved"], "bob",
            props=("releases",)),
        Cmd("policy-update", ["policy", "update", r["policy"]], "alice"),
        Cmd("backup-run", ["backup", "run", "file://{root}/target"], None, base="backup"),
        Cmd("backup-prune", ["backup", "prune", "file://{root}/target", "--keep-daily", "1"], None, base="backup",
            at=T0 + dt.timedelta(days=1, hours=1)),
        Cmd("paper-lend", ["paper", "lend", r["docA"], "--to", "staff", "--request", r["R_approved"],
                           "--due", "2026-03-20"], "bob", again=done),
        Cmd("repair", ["repair"], "alice", base="repair", props=("releases", "leftovers")),
        Cmd("paper-return", ["paper", "return", r["L_out"], "--location", "Room 2"], "bob", again=done),
    ]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    # The points' trees are written and thrown away by the hundred: in memory where there is some.
    shm = Path("/dev/shm")
    tmp = Path(tempfile.mkdtemp(prefix="vault-crash-", dir=shm)) if os.access(shm, os.W_OK) \
        else tmp_path_factory.mktemp("crash")
    try:
        with pytest.MonkeyPatch.context() as mp:
            b = _build(tmp / "build", mp)
            b.refs["dora_key"] = _keygen(b, mp)
            b.scratch = tmp / "points"
            yield b
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _keygen(b: Base, mp) -> str:
    from click.testing import CliRunner
    from vault.cli import cli

    mp.setattr(identity, "SCRYPT_WORK_FACTOR", 10)
    res = CliRunner().invoke(cli, ["keygen", "--out", str(b.ids / "dora.key"), "--json"],
                             env={"VAULT_PASSPHRASE_FILE": str(b.ids / "pass")}, catch_exceptions=False)
    return json.loads(res.stdout)["public_key"]


# -- judging one point ------------------------------------------------------------------------------

def _argv(cmd: Cmd, root: Path, refs: dict[str, str]) -> list[str]:
    return [a.format(root=root, **{k: v for k, v in refs.items() if k == "dora_key"}) for a in cmd.argv]


def _log(root: Path) -> bytes:
    p = root / "vault" / "audit" / "log.jsonl"
    return p.read_bytes() if p.exists() else b""


def _entries(root: Path) -> list[dict]:
    return [json.loads(x) for x in _log(root).splitlines()]


def _files(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted((root / "vault").rglob("*")):
        if p.is_file():
            out[p.relative_to(root / "vault").as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _security(cmd: Cmd, base: Base, root: Path, before: dict[str, str], when: str,
              named: list[str] = ()) -> list[str]:
    """The security properties of ``cmd`` in the tree at ``root``; returns what is violated."""
    bad: list[str] = []
    vdir = root / "vault"
    if not (vdir / "vault.toml").exists():
        return bad
    try:
        v = Vault.open(vdir)
        os.environ["VAULT_STATE_DIR"] = str(root / "judge-state")
        st = authority.full_replay(v).state
    except VaultError as e:
        return [f"{when}: history unreadable: {e}"]
    for prop in cmd.props:
        if prop.startswith("leaver:"):
            who = prop.split(":")[1]
            ids = base.leaver_ids[who]
            for rel, h in _files(root).items():
                if before.get(rel) == h or not rel.endswith(".age") or rel.startswith("dossiers/"):
                    continue
                try:
                    age.decrypt_bytes((vdir / rel).read_bytes(), ids)
                except NoIdentityMatchError:
                    continue
                except VaultError:
                    continue
                bad.append(f"{when}: the leaver {who} opens {rel}, written after the removal started")
            if when == "after" and st["members"][who]["status"] == "active":
                bad.append(f"{when}: {who} is still a member after the retry")
        if prop == "releases" or prop.startswith("leaver:"):
            bad += _releases(st, vdir, before, when, named)
        if prop == "accept":
            n = sum(1 for e in _entries(root) if e["action"] == "intake.accept" and e.get("outcome") == "ok")
            if n > 1:
                bad.append(f"{when}: the submission was accepted {n} times")
    return bad


def _releases(st: dict, vdir: Path, before: dict[str, str], when: str, named: list[str]) -> list[str]:
    """Every key release (whole, staged or half written) belongs to a grant the history names, for
    its dossier; one of a grant the history closed is allowed only in the stopped state and only as
    it was before the command (deleting it is the step after the entry); every open grant of a
    dossier not destroyed has its release, or (stopped) check names the grant as missing it."""
    bad = []
    d = vdir / "keys" / "grants"
    found = set()
    for p in sorted(d.iterdir()) if d.is_dir() else []:
        m = re.fullmatch(r"(?:\.tmp-)?([0-9a-f]{32})\.(G-\d+)\.age(\.pending)?(?:\.[0-9a-f]{8})?", p.name)
        g = st["grants"].get(m.group(2)) if m else None
        rel = f"keys/grants/{p.name}"
        if m and p.name in (f"{m.group(1)}.{m.group(2)}.age", f"{m.group(1)}.{m.group(2)}.age.pending") \
                and (p.name.endswith(".age") or (st["files"].get(rel[: -len(".pending")]) or [None])[0]
                     == hashlib.sha256(p.read_bytes()).hexdigest()):
            found.add(m.group(2))  # in place, or staged with the hash the history names (read from there)
        if g is None or g["dossier"] != m.group(1):
            bad.append(f"{when}: {rel} is a key release no grant names")
        elif g["closed"] is not None and (when != "stopped" or
                                          before.get(rel) != hashlib.sha256(p.read_bytes()).hexdigest()):
            bad.append(f"{when}: {rel} is a key release of a grant the history closed ({g['closed']})")
    for gno, g in st["grants"].items():
        if g["closed"] is None and not st["dossiers"].get(g["dossier"], {}).get("destroyed") and gno not in found \
                and st["members"][g["grantee"]]["status"] == "active" \
                and not any(f"grant {gno} is active" in p for p in named):
            bad.append(f"{when}: the open grant {gno} has no key release")
    return bad


def _creations(root: Path) -> list[str]:
    keys = []
    for e in _entries(root):
        if e.get("outcome") != "ok":
            continue
        a = e["action"]
        if a == "dossier.create":
            keys.append(f"dossier {e.get('number')}")
        elif a.startswith("request.") and a.split(".")[1] in ("access", "copy"):
            keys.append(f"request {e.get('ref')}")
        elif a == "grant.create" or a == "destroy.request" or a == "paper.lend":
            keys.append(f"{a} {e.get('ref')}")
    return keys


def _point(job) -> dict:
    cmd, base, k, point_root, full = job
    tree = base.trees[cmd.base]
    root = Path(point_root)
    copy_tree(tree, root)
    argv = _argv(cmd, root, base.refs)
    out: dict = {"k": k, "problems": [], "fixed": []}
    env = env_for(root, base.ids, cmd.who)
    before = _files(root)
    log0 = _log(root)
    first = run_cli(argv, env, crash_at=k, full=full, trace=True, at=cmd.at, workdir=root)
    if first.traceback:
        out["problems"].append(f"traceback in the run stopped at step {k}: {first.stderr[-800:]}")
    if full:
        if first.code != 0 and not first.one_line_error():
            out["problems"].append(f"a full disk from step {k} on is not one line: exit {first.code} {first.stderr[-400:]}")
    elif k and not first.crashed and first.code == 0 and len(first.steps or ()) < k:
        out["shorter"] = True  # this run took fewer steps than the counting run (a repeated put, a lock)
    elif k and not first.crashed:
        out["problems"].append(f"the run was not stopped at step {k} (exit {first.code}): {first.stderr[-300:]}")
    judge = env_for(root, base.ids, "alice")
    chk = run_cli(["check", "--json"], judge, at=cmd.at, workdir=root)
    if chk.traceback:
        out["problems"].append(f"traceback in check: {chk.stderr[-800:]}")
    state_named = []
    if chk.code != 0:
        try:
            state_named = json.loads(chk.stdout)["problems"]
        except (ValueError, KeyError):
            state_named = [chk.stderr.strip()]
        out["named"] = state_named
    try:
        notes = json.loads(chk.stdout)["notes"]
    except (ValueError, KeyError):
        notes = []
    out["problems"] += _security(cmd, base, root, before, "stopped", state_named + notes)
    if (state_named or notes and "leftovers" in cmd.props) and (root / "vault" / "vault.toml").exists():
        # One 'vault repair' finishes what check named (on a copy: the retry below starts from the stop).
        rroot = root.parent / (root.name + "-repair")
        copy_tree(root, rroot)
        rep = run_cli(["repair", "--json"], env_for(rroot, base.ids, "alice"), at=cmd.at, workdir=rroot)
        chk2 = run_cli(["check", "--json"], env_for(rroot, base.ids, "alice"), at=cmd.at, workdir=rroot)
        # What repair leaves must be what check tells to finish with this very command.
        left = json.loads(chk2.stdout)["problems"] if chk2.stdout.strip().startswith("{") else [chk2.stderr]
        told = f"run 'vault {' '.join(argv[:2])}"
        if "leftovers" in cmd.props and chk2.stdout.strip().startswith("{") and json.loads(chk2.stdout)["notes"]:
            out["problems"].append(f"repair left notes: {json.loads(chk2.stdout)['notes']}")
        if rep.code != 0 or any(told not in p for p in left):
            out["problems"].append(f"repair did not finish it: repair exit {rep.code} {rep.stderr.strip()[-300:]}; "
                                   f"check after: {chk2.stdout.strip()[-600:] or chk2.stderr.strip()[-300:]}")
        shutil.rmtree(rroot, ignore_errors=True)
    again = run_cli(argv, env, at=cmd.at, workdir=root)
    if again.traceback:
        out["problems"].append(f"traceback in the retry: {again.stderr[-800:]}")
    elif again.code != 0 and not (again.one_line_error() and re.search(cmd.again, again.stderr)):
        out["problems"].append(f"the retry failed (exit {again.code}): {again.stderr.strip()[-400:]}")
    if (root / "vault" / "vault.toml").exists():
        # With the keys where the command moves keys (cheaper without, where it does not).
        read = ["--read-data"] if cmd.props else []
        final = run_cli(["check", *read, "--json"], judge, at=cmd.at, workdir=root)
        if final.code != 0:
            out["problems"].append(f"check after the retry: {final.stdout.strip()[-600:] or final.stderr.strip()[-400:]}")
        if not _log(root).startswith(log0):
            out["problems"].append("the history before the command is no longer the history's prefix")
        made = _creations(root)
        dup = sorted({x for x in made if made.count(x) > 1})
        if dup:
            out["problems"].append(f"numbers issued twice: {dup}")
        out["problems"] += _security(cmd, base, root, before, "after")
    else:
        out["problems"].append("no vault after the retry")
    shutil.rmtree(root, ignore_errors=True)
    return out


def _count(cmd: Cmd, base: Base, tmp: Path) -> list[tuple[str, str]]:
    root = tmp / "count"
    copy_tree(base.trees[cmd.base], root)
    res = run_cli(_argv(cmd, root, base.refs), env_for(root, base.ids, cmd.who), trace=True, at=cmd.at, workdir=root)
    assert res.code == 0 and not res.traceback, f"{cmd.name}: {res.stderr}"
    shutil.rmtree(root)
    return res.steps or []


class _Any(dict):
    """Stands for the references at collection time, when only the commands' names are needed."""

    def __missing__(self, key: str) -> str:
        return ""


NAMES = [c.name for c in commands(_Any())]

#: A command with many points is swept in this many shards, each a test of its own, so that parallel
#: test workers share it: shard i of n runs the points at positions i, i+n, i+2n, … of its list, so
#: the n shards together run every point once. (Every other command is one shard.)
SHARDS = {"member-remove-indexed": 2, "destroy-execute": 3, "member-remove-ring": 2}


def _cases(names) -> list:
    return [pytest.param(name, i, n, id=name if n == 1 else f"{name}-{i + 1}of{n}")
            for name in names for n in (SHARDS.get(name, 1),) for i in range(n)]


@pytest.mark.parametrize("name,shard,shards", _cases(NAMES))
def test_every_crash_point_is_finished_or_harmless(base, name, shard, shards):
    _sweep(base, name, full=False, shard=(shard, shards))


def test_the_shards_of_a_command_run_each_of_its_points_once():
    """What ``_sweep`` keeps of a command's points for each of its shards: together, every point, once."""
    points = list(range(0, 1000, 3))
    for n in {1, *SHARDS.values()}:
        kept = [k for i in range(n) for k in _shard(points, (i, n))]
        assert sorted(kept) == points
    assert set(SHARDS) <= set(NAMES)


#: The commands a full disk is tried on: those with work after their commit point, or a key release,
#: or the most steps before it. (The crash sweep above takes every command.)
FULL_DISK = ("init", "member-remove-ring", "member-remove-grantee", "dossier-create", "doc-add", "grant", "revoke",
             "sweep", "intake-accept", "intake-reject", "policy-update", "backup-run", "repair")


@pytest.mark.parametrize("name", FULL_DISK)
def test_a_full_disk_at_every_step_fails_in_one_line_and_is_finished(base, name):
    """The disk fills up at one step and stays full: the command fails in one line (or, past its
    commit point, succeeds) and leaves what the crash sweep accepts — in particular a revoke never
    leaves an active grant without its key release, nor a closed one with it."""
    _sweep(base, name, full=True)


#: Of many alike steps (``Cmd.thin``), one in this many is a point.
THIN_EVERY = 64


def thinned(points: list[int], steps: list[tuple[str, str]], pattern: str) -> list[int]:
    """``points`` less the steps on paths matching ``pattern``, except the first and last of them and
    one in ``THIN_EVERY`` (they leave states that differ only in how many such files exist)."""
    alike = [k for k in points if k and re.search(pattern, steps[k - 1][1])]
    keep = set(alike[::THIN_EVERY]) | set(alike[-1:])
    return [k for k in points if k not in alike or k in keep]


def _shard(points: list[int], shard: tuple[int, int]) -> list[int]:
    i, n = shard
    return points[i::n]


def _sweep(base: Base, name: str, *, full: bool, shard: tuple[int, int] = (0, 1)) -> None:
    cmd = next(c for c in commands(base.refs) if c.name == name)
    scratch = base.scratch / f"{name}-{'full' if full else 'crash'}-{shard[0]}"
    steps = _count(cmd, base, scratch)
    assert steps, f"{name} takes no durable step"
    if full:  # where a full disk says so: creating, writing, appending, making a directory
        points = [i for i, (kind, _) in enumerate(steps, 1) if kind in ("create", "write", "append", "mkdir")]
    else:
        points = distinct_points(steps)
    if cmd.thin:
        fewer = thinned(points, steps, cmd.thin)
        # A pattern that no longer matches the steps (a path moved) would run every point silently.
        assert len(fewer) < len(points) / 4, f"{name}: the thinning pattern matches too few steps"
        points = fewer
    points = _shard(points, shard)
    jobs = [(cmd, base, k, str(scratch / f"p{k}"), full) for k in points]
    results = in_parallel(jobs, _point, workers=WORKERS)
    failures: dict[str, list[int]] = {}
    for (_, _, k, _, _), res in zip(jobs, results):
        found = [str(res)] if "worker_error" in res or "died" in res else res.get("problems", [])
        for p in found:
            # One line per kind of failure, with the steps it happened at (ids and paths vary by run).
            failures.setdefault(re.sub(r"[0-9a-f]{8,}|pytest-\d+|fini\d+|/p\d+", "…", p), []).append(k)
    named = sum(1 for r in results if r.get("named"))
    print(f"{'full disk' if full else 'crash'} points: {name} (shard {shard[0] + 1} of {shard[1]}): "
          f"{len(steps)} steps, {len(points)} points run, {named} named by check")
    lines = [f"{msg[:700]}\n    at steps {ks[:12]}{' …' if len(ks) > 12 else ''} (e.g. "
             f"{steps[ks[0] - 1][0] + ' ' + Path(steps[ks[0] - 1][1]).name if ks[0] else 'no stop'})"
             for msg, ks in failures.items()]
    assert not failures, f"{name}: {sum(map(len, failures.values()))} problems over {len(points)} points:\n" + \
        "\n".join(lines[:30])


def test_repair_is_for_the_archive_department_and_leaves_a_clean_vault_clean(base, tmp_path):
    root = tmp_path / "t"
    copy_tree(base.trees["office"], root)
    res = run_cli(["repair"], env_for(root, base.ids, "staff"), at=T1, workdir=root)
    assert res.code == 1 and res.one_line_error() and "may not repair" in res.stderr, res.stderr
    res = run_cli(["repair", "--json"], env_for(root, base.ids, "bob"), at=T1, workdir=root)
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout) == {"temporaries_removed": [], "commits_finished": [], "checkpoint_rewritten": False,
                                      "releases_reissued": [], "documents_removed": [],
                                      "index_files_removed": []}
    actions = [(e["member"], e["action"], e["outcome"]) for e in _entries(root)[-2:]]
    assert actions == [("staff", "vault.repair", "refused"), ("bob", "vault.repair", "ok")]
    assert run_cli(["check", "--read-data"], env_for(root, base.ids, "alice"), at=T1, workdir=root).code == 0


def test_the_seam_is_armed_only_by_its_variable(base, tmp_path):
    """A real process: without the variable nothing stops; with it, the process ends at the step
    asked, with the seam's exit code and nothing on its error output (as a kill would)."""
    import subprocess
    import sys

    assert not seam._armed  # imported here, in a process that never armed it
    root = tmp_path / "t"
    copy_tree(base.trees["office"], root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_TEST_")}
    env.update({k: v for k, v in env_for(root, base.ids, "bob").items() if v is not None})
    argv = [sys.executable, "-m", "vault", "hold", "add", base.refs["A"], "--reason", "audit"]
    stopped = subprocess.run(argv, env={**env, seam.ENV: "2"}, capture_output=True, text=True, timeout=120)
    assert stopped.returncode == seam.CRASH_EXIT and stopped.stderr == "", stopped.stderr
    full = subprocess.run(argv, env={**env, seam.ENV_FULL: "1"}, capture_output=True, text=True, timeout=120)
    assert full.returncode == 1 and "No space left on device" in full.stderr, full.stderr
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
