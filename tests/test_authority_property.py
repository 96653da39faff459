"""Property: at every step, who can decrypt a dossier is exactly who policy and history allow.

Hypothesis generates sequences of member removals, requests, decisions, grants, revocations,
document additions and destructions. After each step the test asks the cryptography, not the tool:
for every member, can their identity alone — through the ring file or a key release in the vault —
open the dossier's key table? The answer must equal a model written from the rules: an active member
of the archive ring, or an active member with an open grant, and nobody once the dossier is destroyed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.archive.manifests import resolve
from vault.archive.vault import Vault
from vault.crypto import age
from vault.errors import VaultError
from vault.office import access, destroyexec, destruction, documents, dossier, membership
from vault.store.identity import MemberIdentity
from vault.store.keytable import KeyTable

PEOPLE = {  # name: (roles, dept)
    "bob": (["archivist"], "archive"),
    "carol": (["supervisor"], "archive"),
    "s1": (["staff"], "sales"),
    "s2": (["staff"], "dev"),
    "h1": (["dept-head"], "sales"),
    "h2": (["dept-head"], "dev"),
}
RING = {"alice", "bob", "carol"}

step = st.one_of(
    st.tuples(st.just("request"), st.sampled_from(["s1", "s2", "h1"])),
    st.tuples(st.just("approve"), st.sampled_from(["h1", "h2"]), st.integers(0, 5)),
    st.tuples(st.just("deny"), st.sampled_from(["h1", "h2"]), st.integers(0, 5)),
    st.tuples(st.just("grant"), st.integers(0, 5)),
    st.tuples(st.just("revoke"), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.sampled_from(["bob", "s1", "s2", "h1", "h2"])),
    st.tuples(st.just("add")),
    st.tuples(st.just("destroy")),
)


class World:
    """A vault and the model of who may read its one dossier."""

    def __init__(self, root: Path) -> None:
        self.ids = {n: MemberIdentity.generate() for n in ["alice", *PEOPLE]}
        v = Vault.init(root / "vault", supervisor="alice", key=self.ids["alice"].public)
        alice = v.act_as(self.ids["alice"])
        for n, (roles, dept) in PEOPLE.items():
            membership.add_member(alice, n, self.ids[n].public, roles, dept)
        self.root = v.root
        self.number = dossier.create(self.actor("bob"), customer_type="enterprise", business="network-services",
                                     dept="sales", profile={"name": "Customer"})
        self.dossier_id = resolve(Vault.open(self.root), self.number)
        self.doc = root / "doc.txt"
        self.doc.write_text("content")
        self.active = {"alice", *PEOPLE}
        self.requests: list[dict] = []  # model: {no, by, state}
        self.grants: list[dict] = []  # model: {no, grantee, open}
        self.destroyed = False

    def actor(self, name: str):
        return Vault.open(self.root).act_as(self.ids[name])

    def may_read(self) -> set[str]:
        if self.destroyed:
            return set()
        granted = {g["grantee"] for g in self.grants if g["open"]}
        return {m for m in self.active if m in RING or m in granted}

    def can_read(self) -> set[str]:
        """Who the files let in: the ring secret or a key release, opened with their identity alone."""
        kt = self.root / "keys" / f"{self.dossier_id}.age"
        out = set()
        for name, ident in self.ids.items():
            ids = [ident.age_identity()]
            blob = (self.root / "rings" / "archive.age").read_bytes()
            try:
                ids.append(age.parse_identity(age.decrypt_bytes(blob, ids).decode()))
            except VaultError:
                pass
            tables = [kt] if kt.exists() else []
            tables += list((self.root / "keys" / "grants").glob(f"{self.dossier_id}.*.age"))
            for p in tables:
                try:
                    KeyTable.from_bytes(age.decrypt_bytes(p.read_bytes(), ids), what=str(p))
                    out.add(name)
                    break
                except VaultError:
                    continue
        return out

    def play(self, s: tuple) -> None:
        kind = s[0]
        if kind == "request" and s[1] in self.active and not self.destroyed:
            no = access.create_request(self.actor(s[1]), "access", self.number, "purpose")
            self.requests.append({"no": no, "by": s[1], "state": "pending"})
        elif kind in ("approve", "deny") and self.requests and s[1] in self.active:
            r = self.requests[s[2] % len(self.requests)]
            ok = (r["state"] == "pending" and r["by"] != s[1]
                  and PEOPLE[s[1]][1] == PEOPLE.get(r["by"], ([], "archive"))[1])
            try:
                access.decide(self.actor(s[1]), r["no"], approve=kind == "approve", reason="r")
                assert ok, f"{s[1]} decided {r}"
                r["state"] = "approved" if kind == "approve" else "denied"
            except VaultError:
                assert not ok, f"{s[1]} could not decide {r}"
        elif kind == "grant" and self.requests and "bob" in self.active and not self.destroyed:
            r = self.requests[s[1] % len(self.requests)]
            ok = r["state"] == "approved" and r["by"] in self.active
            try:
                gno = access.grant(self.actor("bob"), r["no"])
                assert ok
                r["state"] = "granted"
                self.grants.append({"no": gno, "grantee": r["by"], "open": True})
            except VaultError:
                assert not ok, f"grant of {r} refused"
        elif kind == "revoke" and self.grants:
            g = self.grants[s[1] % len(self.grants)]
            if g["open"]:
                access.revoke(self.actor("alice"), g["no"])
                g["open"] = False
        elif kind == "remove" and s[1] in self.active:
            membership.remove_member(self.actor("alice"), s[1])
            self.active.discard(s[1])
            for g in self.grants:
                if g["grantee"] == s[1]:
                    g["open"] = False
        elif kind == "add" and "bob" in self.active and not self.destroyed:
            documents.add(self.actor("bob"), self.number, [self.doc], category="other", source="s",
                          date="2026-01-01", original=True)
        elif kind == "destroy" and not self.destroyed and "carol" in self.active:
            no = destruction.request(self.actor("alice"), self.number, "spent")
            destruction.approve(self.actor("carol"), no, override_retention="test")
            destroyexec.execute(self.actor("alice"), no)
            self.destroyed = True
            for g in self.grants:
                g["open"] = False


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=3, max_size=9))
def test_who_can_decrypt_is_exactly_who_may(steps):
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        assert w.can_read() == w.may_read()
        for s in steps:
            w.play(s)
            assert w.can_read() == w.may_read(), (s, w.requests, w.grants, w.active)
        # And the tool agrees with itself: the history checks clean.
        from vault.office import check

        rep = check.check(Vault.open(w.root))
        assert rep.ok, rep.problems
