"""The vault directory: layout, genesis record and fingerprint, opening, locking, the acting member."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vault.clock import Clock, zone
from vault.store import index, names, records
from vault.crypto import age
from vault.errors import FormatError, InputError, NotFoundError, PermissionDeniedError
from vault.i18n import N_
from vault.store.identity import MemberKey, PublicKey
from vault.archive.policy import DEFAULT_POLICY, Policy
from vault.store import TMP_PREFIX, confined, fsync_dir, make_dir, remove, remove_tree, sweep_temporaries
from vault.store.locking import VaultLock
from vault.archive import audit, authority, keyfiles, members, recovery, trust
from vault.store.layout import check_name, Layout

from vault.store import write_atomic

FORMAT_VERSION = 2
DEFAULT_NUMBERING = {"scheme": "standard", "options": {"pattern": "{type}-{year}-{seq:06d}"}}
DEFAULT_CLASSIFICATION = {"scheme": "standard", "options": {}}


def fingerprint_of(config: dict[str, Any]) -> str:
    """SHA-256 of the genesis record, in groups of four hex digits, for the admin to keep offline."""
    digest = hashlib.sha256(records.canonical(config)).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass
class Vault:
    """An opened vault directory. Construct with ``Vault.open`` or ``Vault.init``."""

    root: Path
    config: dict[str, Any]
    #: The time this handle's procedures run at (the command line gives the machine's clock).
    clock: Clock = field(default_factory=Clock)
    layout: Layout = field(init=False)
    #: What the last exclusive lock cleaned up: (temporaries removed, interrupted commits finished or dropped).
    recovered: tuple[list[str], list[str]] = field(init=False, default=([], []))
    # Caches for the life of this handle (one command): the replayed history, the client's state
    # store, the plugin manager of the numbering and classification schemes.
    _replay: Any = field(init=False, default=None, repr=False)
    _state_store: Any = field(init=False, default=None, repr=False)
    _plugin_manager: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.layout = Layout(self.root)

    @property
    def policy(self) -> Policy:
        """The policy in force: the newest version the history accepted (never policy.toml as found)."""
        return authority.policy(self)

    # -- creation and opening -------------------------------------------------------------------

    @classmethod
    def init(cls, root: Path, *, supervisor: str, key: PublicKey, numbering: dict[str, Any] | None = None,
             display_name: str | None = None, time_zone: str | None = None, clock: Clock | None = None) -> "Vault":
        """Create a vault whose founding supervisor is ``supervisor`` (public key ``key``).

        The genesis record names the founder, the first archive-ring recipient and the hash of the
        initial policy; its fingerprint anchors everything else, so init needs no secret key.

        :param numbering: ``{"scheme", "options"}``, the numbering rule [R-3.2.2] (default
            ``standard`` with its pattern); ``office.dossier.try_numbering`` checks one first.
        :param display_name: the founder's name as people write it (``张三``), if not their name.
        :param time_zone: the office's time zone (an IANA name), written into the initial policy.
        :param clock: the time the handle's procedures run at (default: the machine's).
        """
        clock = clock or Clock()
        if not names.is_id(supervisor) and display_name is None:  # 张三: the name people write; make an id
            display_name = supervisor
            supervisor = names.new_id("member", names.display_name(supervisor, kind="member"), ())
        check_name("member", supervisor)
        if display_name is not None:
            display_name = names.display_name(display_name, kind="member")
        policy = dict(DEFAULT_POLICY)
        if time_zone is not None:
            zone(time_zone)  # refused here unless this machine knows it
            policy["time_zone"] = time_zone
        numbering = dict(numbering or DEFAULT_NUMBERING)
        root = Path(root)
        if root.exists() and any(root.iterdir()) and not _clear_interrupted_init(root):
            raise InputError(N_("{root} exists and is not empty"), hint=N_("choose a new directory for the vault"), root=root)
        make_dir(root, parents=True)
        ring_ids = {name: age.generate_identity("mlkem768x25519") for name in DEFAULT_POLICY["rings"]}
        ring_rcpts = [age.parse_recipient(age.recipient_of(s)) for s in ring_ids.values()]
        for d in ("members", "rings", "keys", "dossiers", "index"):
            make_dir(root / d)
        config = {
            "format": FORMAT_VERSION,
            "id": secrets.token_hex(16),
            "created_at": clock.stamp(),
            "founder": {"name": supervisor, "key": key.line(),
                        **({"display_name": display_name} if display_name else {})},
            "genesis_rings": {n: age.recipient_of(s) for n, s in ring_ids.items()},
            "policy_sha256": hashlib.sha256(records.canonical(policy)).hexdigest(),
            "intake_recipient": create_intake_key(root, ring_rcpts),
            "numbering": numbering,
            "classification": DEFAULT_CLASSIFICATION,
        }
        v = cls(root, config, clock)
        with VaultLock(root, exclusive=True):
            make_dir(root / "policy")
            records.write_toml(root / "policy" / "1.toml", policy)
            records.write_toml(v.layout.policy, policy)
            members.write_genesis(v, supervisor, key, ring_ids, Policy(policy), display_name)
            index.create_index_key(root, ring_rcpts)
            # The genesis record binds the hash of every file written so far: its fingerprint,
            # kept offline, anchors them as the first history entry anchors everything after.
            config["genesis_records"] = {
                p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and trust.is_record(p.relative_to(root).as_posix())}
            records.validate(config, "vault", what="vault.toml")
            records.write_toml(v.layout.config, config)  # last: its presence marks a complete vault
            fsync_dir(root)
        return v

    @classmethod
    def open(cls, root: Path, *, clock: Clock | None = None) -> "Vault":
        """Open an existing vault, checking its format version first; its procedures run at ``clock``'s
        time (default: the machine's)."""
        root = Path(root)
        cfg_path = root / "vault.toml"
        if not cfg_path.is_file():
            raise NotFoundError(N_("no vault at {root} (no vault.toml)"), param="vault", root=root)
        config = records.load_toml(cfg_path, what="vault.toml")
        if config.get("format") == 1:
            raise FormatError(N_("vault.toml: this vault has format 1; this version of vault reads format 2"),
                              hint=N_("a supervisor runs 'vault migrate' once (back the vault up first)"))
        if config.get("format") != FORMAT_VERSION:
            raise FormatError(N_("vault.toml: unsupported format {format!r}"), hint=N_("upgrade vault"), format=config.get('format'))
        records.validate(config, "vault", what="vault.toml")
        if "genesis_records" not in config:
            raise FormatError(N_("vault.toml: format 2 without genesis_records"), hint=N_("the genesis record is damaged"))
        if (root / "audit" / "v2-log.jsonl").exists():
            raise FormatError(N_("an interrupted migration"), hint=N_("run 'vault migrate' again to finish it"))
        return cls(root, config, clock or Clock())

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.config)

    def lock(self, *, exclusive: bool) -> VaultLock | _SweepingLock:
        """The vault lock; writers also sweep temporaries left by an interrupted command."""
        lk = VaultLock(self.root, exclusive=exclusive)
        if exclusive:
            return _SweepingLock(lk, self.root, self)
        return lk

    def act_as(self, ident: MemberKey) -> "Actor":
        """The member whose identity this is; PermissionDeniedError if they are no (longer a) member."""
        line = ident.public.line()
        for rec in members.all_members(self).values():
            if rec["key"] == line:
                if rec["status"] != "active":
                    Actor(self, rec, ident).audit("vault.open", outcome="refused")
                    raise PermissionDeniedError(N_("member {name} has been removed from this vault"), name=rec['name'])
                return Actor(self, rec, ident)
        raise PermissionDeniedError(N_("this identity is not a member of this vault"), param="member_identity")


class _SweepingLock:
    def __init__(self, lk: VaultLock, root: Path, vault: Vault | None = None) -> None:
        self.lk, self.root, self.vault = lk, root, vault

    def __enter__(self) -> VaultLock:
        self.lk.__enter__()
        self._confined = confined(self.root)
        self._confined.__enter__()
        swept = sweep_temporaries(self.root)
        if self.vault is not None:
            try:
                finished = recovery.recover(self.vault)
                finished += recovery.finish(self.vault, authority.state(self.vault))
                self.vault.recovered = ([p.relative_to(self.root).as_posix() for p in swept], finished)
            except BaseException:
                self._confined.__exit__(None, None, None)
                self.lk.__exit__(None, None, None)
                raise
        return self.lk

    def __exit__(self, *exc: object) -> None:
        if self.vault is not None:
            keyfiles.drop(self.vault)  # key files staged by a command that did not commit them
        self._confined.__exit__(None, None, None)
        self.lk.__exit__(*exc)


@dataclass
class Actor:
    """A member acting on a vault with their unlocked identity; caches unlocked ring identities."""

    vault: Vault
    record: dict[str, Any]
    identity: MemberKey
    _rings: dict[str, age.Identity] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.record["name"]

    @property
    def roles(self) -> list[str]:
        return list(self.record["roles"])

    @property
    def clock(self) -> Clock:
        """The time this member's procedures run at: their vault handle's."""
        return self.vault.clock

    def require(self, action: str, *, number: str | None = None) -> None:
        """Refuse (and audit the refusal) unless the policy lets this member's roles do ``action``."""
        try:
            self.vault.policy.require(self.name, self.roles, action)
        except PermissionDeniedError:
            audit.record(self, action, outcome="refused", number=number)
            raise

    def audit(self, action: str, **kw: Any) -> None:
        """Append an audit entry that writes nothing (see ``vault.archive.audit.record``)."""
        audit.record(self, action, **kw)

    def commit(self, action: str, files: dict[str, bytes | None], **kw: Any) -> dict[str, Any]:
        """Write ``files`` with one history entry as the commit point (``vault.archive.audit.commit``)."""
        return audit.commit(self, action, files, **kw)

    def commit_many(self, items: list[dict[str, Any]], *, synced: list | None = None) -> list[dict[str, Any]]:
        """Several changes, one entry each, made durable and appended together (``audit.commit_many``)."""
        return audit.commit_many(self, items, synced=synced)

    def sign(self, data: dict[str, Any]) -> dict[str, Any]:
        return records.sign_record(data, signer=self.name, key=self.identity)

    def forget_rings(self) -> None:
        self._rings.clear()

    def read_identities(self) -> list[age.Identity]:
        """Every age identity this member can use to open key tables: their rings, then their own."""
        for ring in self.vault.policy.rings_for(self.roles):
            if ring not in self._rings:
                self._rings[ring] = members.unlock_ring(self.vault, ring, self.identity)
        return [*self._rings.values(), self.identity.age_identity()]


#: What ``init`` writes before ``vault.toml`` (its last file): a directory holding nothing else and
#: no ``vault.toml`` is an init that was interrupted, which the next ``init`` clears and starts again.
_INIT_DIRS = ("members", "rings", "keys", "dossiers", "index", "policy")
_INIT_FILES = (".lock", "policy.toml", "policy/1.toml", "members/*.toml", "rings/*.toml", "rings/*.age",
               "keys/_intake.age", "keys/_index.age")


def _clear_interrupted_init(root: Path) -> bool:
    """If ``root`` holds only what an interrupted ``init`` leaves, remove it and say True."""
    if (root / "vault.toml").exists():
        return False
    for dirpath, _, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel != Path(".") and (len(rel.parts) > 1 or rel.parts[0] not in _INIT_DIRS):
            return False
        for f in filenames:
            p = (rel / f).as_posix()
            if not (f.startswith(TMP_PREFIX) or any(trust.match(p, pat) for pat in _INIT_FILES)):
                return False
    for name in os.listdir(root):
        if name == ".lock":
            continue
        if (root / name).is_dir():
            remove_tree(root / name)
        else:
            remove(root / name)
    fsync_dir(root)
    return True


def dumps_json(obj: Any) -> str:
    """JSON for ``--json`` output: stable key order, UTF-8."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)


def create_intake_key(root: Path, ring_recipients: list) -> str:
    """Make the intake identity, wrapped to the archive ring like a key table; returns its recipient."""
    secret = age.generate_identity("mlkem768x25519")
    write_atomic(Layout(root).path("intake_key"), age.encrypt_bytes(secret.encode(), ring_recipients), mode=0o600)
    return age.recipient_of(secret)
