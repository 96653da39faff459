"""Make tests/vectors/frozen-v1 once: a small vault of format version 1 that every later version must open.

Run once, from the repository root: ``.venv/bin/python tests/vectors/make_frozen_v1.py``. It refuses
to overwrite an existing vector: the point of the vector is that it was written by the first
format's code and is never regenerated. ``tests/test_frozen_vault.py`` reads it; it never runs this.
Everything in it is invented, and the identities (passphrase ``frozen``, scrypt 2^10) are test-only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "frozen-v1"
sys.path.insert(0, str(HERE.parent.parent))

from vault.office import access, documents, dossier  # noqa: E402
from vault.archive import audit  # noqa: E402
from vault.office import membership  # noqa: E402
from vault.clock import Clock  # noqa: E402
from vault.store import identity  # noqa: E402
from vault.archive.vault import Vault  # noqa: E402

PASSPHRASE = "frozen"
WORK_FACTOR = 10  # test-only: a real identity uses 2^18
START = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.timezone.utc)
STAFF = [  # name, roles, department
    ("alice", ["supervisor"], "archive"),
    ("bob", ["archivist"], "archive"),
    ("dave", ["archivist"], "archive"),  # removed below: the ring rotates
    ("carol", ["staff"], "sales"),
    ("erin", ["dept-head"], "sales"),
]
CUSTOMERS = [
    ("enterprise", "network-services", "sales",
     {"name": "Frostvale Cable Works Ltd", "address": "3 Glacier Quay, Northport",
      "contact": ["+86 10 5550 0199", "office@frostvale.example"], "legal_rep": "Ilse Rimeford"}),
    ("individual", "software-development", "sales",
     {"name": "Odran Pellwick", "contact": ["odran@pellwick.example"], "notes": "prefers e-mail"}),
]


#: The vault handles' clock: fixed, and advanced by ``tick``, so the vector's dates say when in the
#: story each step happened.
CLOCK = Clock(START)


def tick(minutes: int) -> None:
    CLOCK.set(START + dt.timedelta(minutes=minutes))


def main() -> None:
    # --out DIR writes a trial copy elsewhere (to see what the script makes); the default is the vector.
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else OUT
    if out.exists():
        raise SystemExit(f"{out} exists; the frozen vector is made once and never regenerated")
    identity.SCRYPT_WORK_FACTOR = WORK_FACTOR
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "frozen-v1"
        ids_dir = work / "identities"
        ids_dir.mkdir(parents=True)
        ids = {}
        for name, _, _ in STAFF:
            ids[name] = identity.MemberIdentity.generate()
            identity.save_identity(ids_dir / f"{name}.key", ids[name], PASSPHRASE)
        tick(0)
        v = Vault.init(work / "vault", supervisor="alice", key=ids["alice"].public, clock=CLOCK)
        alice = v.act_as(ids["alice"])
        for i, (name, roles, dept) in enumerate(STAFF[1:], 1):
            tick(i)
            membership.add_member(alice, name, ids[name].public, roles, dept)
        bob = Vault.open(v.root, clock=CLOCK).act_as(ids["bob"])
        numbers, docs = [], {}
        src = Path(tmp) / "src"
        src.mkdir()

        def add(no: str, fname: str, text: str, step: int, **kw) -> str:
            tick(step)
            f = src / fname
            f.write_text(text, encoding="utf-8")
            kw.setdefault("original", True)
            docno = documents.add(bob, no, [f], source="sales desk (invented)", **kw)[0]
            docs[docno] = hashlib.sha256(f.read_bytes()).hexdigest()
            return docno

        for i, (ctype, business, dept, profile) in enumerate(CUSTOMERS):
            tick(10 + i)
            numbers.append(dossier.create(bob, customer_type=ctype, business=business, dept=dept, profile=profile))
        e, p = numbers
        v1 = add(e, "contract.txt", "Service contract, Frostvale Cable Works (invented).\n", 20,
                 category="contract", date="2026-01-10", title="service contract")
        add(e, "registration.txt", "Business registration extract (invented). Ünïcode ✓\n", 21,
            category="basic-info", date="2025-12-01", original=False, copy_note="original kept by the customer")
        add(e, "contract-v2.txt", "Service contract, amended (invented).\n", 22,
            category="contract", date="2026-01-20", title="service contract, amended", replaces=v1)
        add(p, "letter.txt", "Letter from Odran Pellwick (invented).\n", 23,
            category="communication", date="2026-01-25", paper_location="cabinet 2, drawer 1")
        tick(30)
        membership.remove_member(alice, "dave")
        carol = Vault.open(v.root, clock=CLOCK).act_as(ids["carol"])
        erin = Vault.open(v.root, clock=CLOCK).act_as(ids["erin"])
        tick(40)
        req = access.create_request(carol, "access", p, "follow-up call about the letter (invented)")
        tick(41)
        access.decide(erin, req, approve=True)
        tick(42)
        bob = Vault.open(v.root, clock=CLOCK).act_as(ids["bob"])  # the ring rotated: unlock its new generation
        grant = access.grant(bob, req, hours=24)
        tick(43)
        trail = audit.verify(v)
        assert trail.ok, trail.problems
        expected = {
            "format": 1,
            "fingerprint": v.fingerprint,
            "passphrase": PASSPHRASE,
            "documents": docs,
            "dossiers": {no: c[3]["name"] for no, c in zip(numbers, CUSTOMERS)},
            "removed_members": ["dave"],
            "grants": {grant: {"request": req, "grantee": "carol", "dossier": p}},
            "audit_entries": trail.count,
        }
        (work / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        (work / "vault" / ".lock").unlink(missing_ok=True)
        (work / "vault" / "audit" / ".lock").unlink(missing_ok=True)
        shutil.copytree(work, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
