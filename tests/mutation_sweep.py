"""Every file of a small office vault, every way of changing it: the world and the mutations the sweep uses.

``build`` makes an office with one of everything the format has (members in every role and one
removed, dossiers with documents and versions, requests, decisions, grants — one revoked, one
closed by the removal —, a hold and a lifted one, a finished destruction with certificate, a
disaster-recovery export, intake
submissions pending, accepted and rejected, an invitation, paper loans and an inventory, a policy
version, reviews, a backup with its key mirror) and keeps every version each file ever had, so
that a file can be put back as it was. ``mutations`` lists, for one file, a byte flipped at the
start, middle and end, the file cut in half, deleted, swapped with a sibling of its kind, and
replaced by its own older version.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from office import Office, make_office

# A file's kind: its path with every id and number in it replaced, so siblings share a kind.
_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{2}/[0-9a-f]{64}|[0-9a-f]{64}|\b[RGDLI]-\d{6,12}\b|\d{8}T\d{6}Z|\d{10}")


def kind(rel: str) -> str:
    return _ID.sub("#", rel)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@dataclass
class World:
    office: Office
    target: Path  # the backup target's directory (a file:// URL)
    numbers: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    spare_request: str = ""
    versions: dict[str, list[bytes]] = field(default_factory=dict)  # vault path -> every version, oldest first
    target_versions: dict[str, list[bytes]] = field(default_factory=dict)

    def capture(self) -> None:
        for store, root in ((self.versions, self.office.vault_dir), (self.target_versions, self.target)):
            if root.exists():
                for rel, data in files(root).items():
                    seen = store.setdefault(rel, [])
                    if data not in seen:
                        seen.append(data)


def build(root: Path, mp: pytest.MonkeyPatch) -> World:
    o = make_office(root / "office", mp)
    w = World(o, root / "target")
    url = f"file://{w.target}"
    step = w.capture

    def run(*a, **kw):
        r = o.run(*a, **kw)
        step()
        return r

    def js(*a, **kw):
        r = o.json(*a, **kw)
        step()
        return r

    step()
    for name, role, dept in (("sam", "supervisor", "archive"), ("staff", "staff", "sales"),
                             ("head", "dept-head", "sales"), ("lia", "liaison", "sales"),
                             ("audrey", "auditor", "audit"), ("olga", "operator", "it"),
                             ("barry", "backup", "it"), ("leaver", "archivist", "archive"),
                             ("staff2", "staff", "sales")):
        o.add_member(name, role, dept=dept)
        step()
    a = o.create(name="Sweep Customer A", contact="a@example.org")
    step()
    b = o.create(name="Sweep Customer B", contact="b@example.org")
    step()
    c = o.create(name="Sweep Customer C")
    step()
    f = root / "doc.txt"
    f.write_text("first document\n")
    docs = [o.add_doc(a, f), o.add_doc(a, f, "bob", "communication"), o.add_doc(b, f), o.add_doc(c, f),
            o.add_doc(a, f, "bob", "basic-info")]
    step()
    run("dossier", "update", a, "--address", "1 Sweep Street", who="bob")
    run("doc", "event", docs[0], "contract-fulfilled", "--date", "2026-01-01", "--force-date", who="bob")
    # Requests: one granted, one granted then revoked, one denied, one approved copy, one granted to
    # the member who is removed below.
    reqs = [js("request", "access", a, "--purpose", f"p{i}", who=who)["number"]
            for i, who in enumerate(("staff", "staff", "staff", "staff2", "staff"))]
    for r in (reqs[0], reqs[1], reqs[3], reqs[4]):
        run("request", "approve", r, who="head")
    run("request", "deny", reqs[2], "--reason", "no need", who="head")
    grants = [js("grant", r, who="bob")["number"] for r in (reqs[0], reqs[1], reqs[3])]
    run("grant", "revoke", grants[1], who="bob")
    cp = js("request", "copy", docs[1], "--purpose", "for the customer", who="staff")["number"]
    run("request", "approve", cp, who="alice")
    # Holds: one in force, one lifted.
    run("hold", "add", b, "--reason", "audit", who="alice")
    run("hold", "add", c, "--reason", "dispute", who="alice")
    run("hold", "remove", c, "--reason", "settled", who="alice")
    # A finished destruction of one document, with its certificate.
    d = js("destroy", "request", docs[1], "--reason", "duplicate", who="alice")["number"]
    run("destroy", "approve", d, "--override-retention", "court order", who="sam")
    run("destroy", "execute", d, who="alice")
    # A disaster-recovery export, requested, approved and run.
    from vault.crypto import age

    dr = js("export", "disaster-recovery", "request", "--recipient", age.recipient_of(age.generate_identity("x25519")),
            who="alice")["number"]
    run("export", "disaster-recovery", "approve", dr, who="sam")
    run("export", "disaster-recovery", "run", dr, "--output", str(root / "dr"), who="alice")
    # Intake: one accepted, one rejected, one pending; an invitation.
    sub = ("intake", "submit", str(f), "--for", a, "--category", "feedback", "--source", "desk",
           "--date", "2026-01-01")
    s1, s2, _ = (js(*sub)["ids"][0] for _ in range(3))
    run("intake", "accept", s1, who="bob")
    run("intake", "reject", s2, "--reason", "spam", who="bob")
    run("intake", "invite", a, "--base-url", "https://portal.example.org", who="bob")
    # Paper: a loan returned, a loan out, an inventory.
    loan = js("paper", "lend", docs[0], "--to", "staff", "--request", reqs[0], "--due", _in_days(7),
              who="bob")["number"]
    run("paper", "return", loan, "--location", "Room 2", who="bob")
    js("paper", "lend", docs[0], "--to", "staff", "--request", reqs[0], "--due", _in_days(7), who="bob")
    run("paper", "inventory", "--found", f"{docs[3]}=Room 1", who="bob")
    # A policy version, a review.
    pol = root / "policy.toml"
    pol.write_bytes((o.vault_dir / "policy.toml").read_bytes() + b"\n")
    run("policy", "update", str(pol), who="alice")
    run("review", "done", a, "--verified", who="bob")
    # A backup, then a removal (rings rotate, key tables and keys re-wrapped), then a second backup
    # so the key mirror has generations.
    run("backup", "run", url, who="barry")  # with an identity: backups.toml is bound to the history
    run("member", "remove", "leaver", who="alice")
    run("member", "remove", "staff2", who="alice")
    run("find", "--name", "Sweep", who="bob")
    run("dossier", "update", b, "--contact", "b2@example.org", who="bob")  # a search-index delta
    run("backup", "run", url)
    w.numbers, w.docs, w.requests, w.spare_request = [a, b, c], docs, reqs, reqs[4]  # approved, not granted
    return w


def _in_days(n: int) -> str:
    import datetime as dt

    from vault import clock

    return (dt.date.fromisoformat(clock.today()) + dt.timedelta(days=n)).isoformat()


Mutation = tuple[str, Callable[[Path], None]]


def mutations(root: Path, rel: str, versions: dict[str, list[bytes]], current: dict[str, bytes]) -> list[Mutation]:
    """(name, apply) for every way of changing ``rel`` under ``root`` (applied to a pristine tree)."""
    data = current[rel]
    out: list[Mutation] = []
    p = root / rel

    def put(b: bytes, path: Path = p) -> Callable[[Path], None]:
        return lambda r: (r / path.relative_to(root)).write_bytes(b)

    for name, i in (("flip-first", 0), ("flip-middle", len(data) // 2), ("flip-last", len(data) - 1)):
        if data and not (name != "flip-first" and i == 0):
            out.append((name, put(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])))
    if data:
        out.append(("truncate", put(data[: len(data) // 2])))
    out.append(("delete", lambda r: (r / rel).unlink()))
    k = kind(rel)
    sib = next((s for s in current if s != rel and kind(s) == k and current[s] != data), None)
    if sib is not None:
        def swap(r: Path, sib: str = sib) -> None:
            (r / rel).write_bytes(current[sib])
            (r / sib).write_bytes(data)
        out.append((f"swap:{sib}", swap))
    older = [x for x in versions.get(rel, []) if x != data]
    if older:
        out.append(("older", put(older[-1])))
    return out


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)
