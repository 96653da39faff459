"""``vault demo``: a small sample office to try the vault on (invented customers, demo identities)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from vault.office import access, destroyexec, destruction, documents, dossier, intake

from vault.archive import manifests
from vault import backup
from vault.store import identity
from vault.office import membership
from vault.errors import InputError
from vault.i18n import _, N_
from vault.archive.vault import Actor, Vault

DEMO_PASSPHRASE = "demo"  # printed for the newcomer; demo identities protect invented data only

STAFF = [
    # name, roles, department
    ("alice", ["supervisor"], "archive"),
    ("sam", ["supervisor"], "archive"),
    ("bob", ["archivist"], "archive"),
    ("carol", ["liaison"], "sales"),
    ("dave", ["staff"], "sales"),
    ("erin", ["dept-head"], "sales"),
    ("frank", ["auditor"], "audit"),
    ("olga", ["operator"], "tech"),
]

CUSTOMERS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("enterprise", "network-services", "sales", {"name": "Northwind Networks Ltd", "address": "12 Harbour Road",
     "contact": ["+86 10 5550 0101", "it@northwind.example"], "legal_rep": "Li Wei"}),
    ("enterprise", "software-development", "sales", {"name": "Bluefin Software Co", "contact": ["ops@bluefin.example"],
     "legal_rep": "Chen Jing"}),
    ("individual", "network-services", "sales", {"name": "Zhang Min", "contact": ["+86 139 5550 0202"]}),
    ("individual", "software-development", "sales", {"name": "Wang Fang", "address": "8 Garden Lane"}),
]


def build(root: Path) -> str:
    """Create the demo vault and identities under ``root``; return what to try next."""
    root = root.resolve()  # the commands printed at the end work from any directory
    if root.exists() and any(root.iterdir()):
        raise InputError(N_("{root} exists and is not empty"), hint=N_("pick a new directory for the demo"), root=root)
    ids_dir = root / "identities"
    ids_dir.mkdir(parents=True, mode=0o700)
    ids = {}
    for name, _roles, _dept in STAFF:
        ids[name] = identity.MemberIdentity.generate()
        # Demo identities guard invented data behind a published passphrase: a lower scrypt cost
        # keeps the demo quick; identities made with 'vault keygen' use the full cost.
        identity.save_identity(ids_dir / f"{name}.key", ids[name], DEMO_PASSPHRASE, work_factor=15)
    v = Vault.init(root / "vault", supervisor="alice", key=ids["alice"].public)
    alice = v.act_as(ids["alice"])
    for name, roles, dept in STAFF[1:]:
        membership.add_member(alice, name, ids[name].public, roles, dept)
    bob = Vault.open(root / "vault").act_as(ids["bob"])
    numbers = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (ctype, business, dept, profile) in enumerate(CUSTOMERS):
            no = dossier.create(bob, customer_type=ctype, business=business, dept=dept, profile=profile)
            numbers.append(no)
            for j, cat in enumerate(manifests.CATEGORIES):
                f = Path(tmp) / f"{cat}-{i}.txt"
                f.write_text(f"Sample {cat} material for {profile['name']} (invented).\n")
                documents.add(bob, no, [f], category=cat, source="demo: sales department", date=f"2026-0{1 + j}-15",
                              original=(j % 2 == 0), copy_note=None if j % 2 == 0 else "original kept by the customer",
                              title=f"{cat} {i}")
        f = Path(tmp) / "contract-v2.txt"
        f.write_text("Amended contract (invented).\n")
        documents.add(bob, numbers[0], [f], category="contract", source="demo: sales department",
                      date="2026-09-01", original=True, title="contract, amended", replaces=f"{numbers[0]}/0002")
        f = Path(tmp) / "portal-upload.txt"
        f.write_text("Feedback sent through the customer portal (invented).\n")
        pending = intake.submit(v, [f], number=numbers[2], category="feedback", source="demo: customer portal",
                                date="2026-10-02")[0]

    def act(name: str) -> Actor:
        return Vault.open(root / "vault").act_as(ids[name])

    # A consultation through to a grant.
    req = access.create_request(act("dave"), "access", numbers[1], "prepare the renewal offer")
    access.decide(act("erin"), req, approve=True)
    grant = access.grant(act("bob"), req, hours=24)
    # A backup to a local directory (the embedded default target).
    target = f"file://{(root / 'offsite').resolve()}"
    backup.run(Vault.open(root / "vault"), target, actor=act("olga"))  # registered: backups.toml is bound
    # A destruction by procedure, approved by a second supervisor.
    dno = destruction.request(act("alice"), f"{numbers[3]}/0006", "customer asked for erasure")
    destruction.approve(act("sam"), dno, override_retention="erasure request under the privacy law")
    destroyexec.execute(act("alice"), dno)
    vault = _command()
    return "\n".join([
        _("demo office created in {root}").format(root=root),
        _("vault fingerprint: {fingerprint}").format(fingerprint=v.fingerprint),
        _("identities in {dir} (passphrase: {passphrase}) for: {names}").format(
            dir=ids_dir, passphrase=DEMO_PASSPHRASE, names=", ".join(n for n, _r, _d in STAFF)),
        "",
        _("try next:"),
        f"  export VAULT_DIR={root / 'vault'} VAULT_IDENTITY={ids_dir / 'bob.key'}",
        f"  {vault} dossier list",
        f"  {vault} doc list {numbers[0]}",
        f"  {vault} doc view {numbers[0]}/0001",
        f"  {vault} doc history {numbers[0]}/0002",
        f"  {vault} find northwind ; {vault} find 'min zhang' --type individual",
        f"  {vault} check && {vault} audit verify",
        f"  {vault} grant list ; {vault} request show {req}",
        f"  VAULT_IDENTITY={ids_dir / 'dave.key'} {vault} doc view {numbers[1]}/0001   # " + _("dave holds grant {grant}").format(grant=grant),
        f"  {vault} destroy certificate {dno}",
        f"  {vault} intake list ; {vault} intake accept {pending}",
        f"  {vault} backup list {target}",
        f"  {vault} retention report ; {vault} review due",
        f"  VAULT_IDENTITY={ids_dir / 'dave.key'} {vault} doc view {numbers[0]}/0001   # " + _("refused: staff hold no key"),
    ])


def _command() -> str:
    """How the newcomer runs ``vault``: by name if it is on PATH, else by the path of this install."""
    local = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if shutil.which("vault") or local is None or local.name != "vault":
        return "vault"
    return str(local)
