"""Where everything lives under the vault root (docs/FORMAT.md §2), and the names that become file names.

``PATHS`` is the one table of the repository layout, written as FORMAT §2 writes it (a test checks
the two against each other); ``Layout`` resolves its entries under a vault root.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from vault.errors import InputError
from vault.i18n import N_

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

#: Every file and directory of a vault: kind -> path template, with ``<part>`` as in FORMAT §2.
PATHS: dict[str, str] = {
    "config": "vault.toml",
    "policy": "policy.toml",
    "policy_version": "policy/<n>.toml",
    "member": "members/<name>.toml",
    "ring_record": "rings/<ring>.toml",
    "ring_secret": "rings/<ring>.age",
    "key_table": "keys/<dossier-id>.age",
    "index_key": "keys/_index.age",
    "manifest": "dossiers/<dossier-id>/manifest.toml",
    "document": "dossiers/<dossier-id>/documents/<doc-id>.age",
    "sequence": "index/sequence",
    "issued_number": "index/numbers/<h[:2]>/<h>",
    "search_recipient": "index/search/recipient.toml",
    "search_head": "index/search/head.age",
    "search_gram_shard": "index/search/g/<n>.<gen>.age",
    "search_dossier_shard": "index/search/d/<n>.<gen>.age",
    "search_delta": "index/search/delta/<seq>.age",
    "search_sequence": "index/search/sequence",
    "review": "reviews/<dossier-id>/<seq>.toml",
    "intake_key": "keys/_intake.age",
    "grant_key": "keys/grants/<dossier-id>.<grant>.age",
    "request": "requests/<R-no>.toml",
    "grant": "grants/<G-no>.toml",
    "audit_log": "audit/log.jsonl",
    "audit_checkpoint": "audit/checkpoint.toml",
    "audit_lock": "audit/.lock",
    "audit_v1_log": "audit/v1-log.jsonl",
    "submission": "intake/<id>.age",
    "submission_record": "intake/<id>.toml",
    "upload": "intake/.upload-<id>.age",
    "submission_rewrap": "intake/<id>.rewrap.age",
    "invitation": "intake/invitations/<id>.toml",
    "invitation_use": "intake/uses/<invitation-id>/<k>",
    "hold": "holds/<dossier-id>.toml",
    "hold_lift": "holds/lifted/<dossier-id>.<n>.toml",
    "paper_loan": "paper/loans/<L-no>.toml",
    "paper_inventory": "paper/inventories/<I-no>.toml",
    "destruction": "destructions/<D-no>.toml",
    "recovery_export": "recovery/<E-no>.toml",
    "backups": "backups.toml",
    "lock": ".lock",
    "staging_journal": ".tmp-writes/journal",
}
#: The history log, as messages name it.
AUDIT_LOG = PATHS["audit_log"]

_PART = re.compile(r"<([^>]+)>")

#: The JSON Schema (``schemas/<schema>.schema.json``) of every TOML file a vault holds, by path as
#: FORMAT §2 writes it (a record about another carries its suffix: ``.decision``, ``.closed``, ...).
#: Every read of a record validates it against its row (FORMAT §3); a test checks that every TOML
#: file the vault writes has exactly one row.
SCHEMAS: dict[str, str] = {
    "vault.toml": "vault",
    "policy.toml": "policy",
    "policy/<n>.toml": "policy",
    "members/<name>.toml": "member",
    "rings/<ring>.toml": "ring",
    "dossiers/<dossier-id>/manifest.toml": "manifest",
    "reviews/<dossier-id>/<seq>.toml": "review",
    "requests/<R-no>.toml": "request",
    "requests/<R-no>.decision.toml": "decision",
    "requests/<R-no>.resolution.toml": "resolution",
    "requests/<R-no>.used.toml": "used",
    "grants/<G-no>.toml": "grant",
    "grants/<G-no>.closed.toml": "closed",
    "holds/<dossier-id>.toml": "hold",
    "holds/lifted/<dossier-id>.<n>.toml": "holdlift",
    "destructions/<D-no>.toml": "destruction",
    "destructions/<D-no>.approval.toml": "approval",
    "destructions/<D-no>.execution.toml": "execution",
    "destructions/<D-no>.closed.toml": "destructionclose",
    "destructions/<D-no>.certificate.toml": "certificate",
    "paper/loans/<L-no>.toml": "paperloan",
    "paper/loans/<L-no>.returned.toml": "paperreturn",
    "paper/inventories/<I-no>.toml": "inventory",
    "recovery/<E-no>.toml": "recovery",
    "recovery/<E-no>.approval.toml": "recoveryapproval",
    "recovery/<E-no>.done.toml": "recoverydone",
    "intake/<id>.toml": "intake",
    "intake/<id>.rejected.toml": "rejected",
    "intake/invitations/<id>.toml": "invitation",
    "index/search/recipient.toml": "search",
    "audit/checkpoint.toml": "checkpoint",
    "backups.toml": "backups",
}

# What each ``<part>`` of a SCHEMAS path matches: the forms of FORMAT §2 (``vault/store/ids.py``).
_PART_FORMS = {"n": r"[0-9]+", "seq": r"[0-9]+", "name": r"[a-z0-9][a-z0-9._-]{0,63}", "ring": r"[a-z0-9][a-z0-9._-]{0,63}",
               "dossier-id": r"[0-9a-f]{32}", "id": r"[0-9a-f]{32}",
               **{f"{k}-no": rf"{k}-[0-9]{{6,12}}" for k in "RGDLIE"}}


def _pattern(template: str) -> re.Pattern[str]:
    pieces = _PART.split(template)  # literal, part, literal, part, ...
    return re.compile("".join(_PART_FORMS[x] if i % 2 else re.escape(x) for i, x in enumerate(pieces)))


_SCHEMA_PATTERNS = [(_pattern(path), schema) for path, schema in SCHEMAS.items()]


def schema_for(rel: str) -> str | None:
    """The schema of the record at ``rel`` (relative to the vault root, with ``/``), or None if no
    record lives there."""
    for pattern, schema in _SCHEMA_PATTERNS:
        if pattern.fullmatch(rel):
            return schema
    return None


_SAFE = re.compile(r"[A-Za-z0-9-]")


def document_file_name(docno: str) -> str:
    """A file name for a document number: ``/`` becomes ``_``, anything but ``[A-Za-z0-9-]`` is %-escaped.

    Injective (``_`` and ``%`` are themselves escaped), so two documents never share a file, and
    never ``.``/``..`` or a hidden file, whatever characters a numbering scheme puts in a number.
    """
    return "".join(c if _SAFE.match(c) else "_" if c == "/" else "".join(f"%{b:02X}" for b in c.encode())
                   for c in docno)


def check_name(kind: str, name: str) -> str:
    """Member, department and ring names are short lowercase tokens (they become file names)."""
    if not NAME_RE.match(name):
        raise InputError(N_("bad {kind} name {name!r}"), hint=N_("use lowercase letters, digits, '.', '_' or '-' (max 64)"), kind=kind, name=name)
    return name


@dataclass
class Layout:
    """Where everything lives under the vault root ``root`` (see ``PATHS``)."""

    root: Path

    def path(self, kind: str, **parts: str) -> Path:
        """The path of ``kind`` with its ``<part>``s filled in; ``-`` and ``[:2]`` in a part's name are
        spelled ``_`` and nothing (``dossier_id=…``, ``h=…``: ``<h[:2]>`` is the first two of ``h``)."""
        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.endswith("[:2]"):
                return parts[name[:-4]][:2]
            return parts[name.replace("-", "_")]

        return self.root / _PART.sub(fill, PATHS[kind])

    @property
    def config(self) -> Path:
        return self.path("config")

    @property
    def policy(self) -> Path:
        return self.path("policy")

    def member(self, name: str) -> Path:
        return self.path("member", name=name)

    def ring_record(self, name: str) -> Path:
        return self.path("ring_record", ring=name)

    def ring_secret(self, name: str) -> Path:
        return self.path("ring_secret", ring=name)

    def key_table(self, dossier: str) -> Path:
        return self.path("key_table", dossier_id=dossier)

    def dossier_dir(self, dossier: str) -> Path:
        return self.manifest(dossier).parent

    def manifest(self, dossier: str) -> Path:
        return self.path("manifest", dossier_id=dossier)

    def document(self, dossier: str, doc_id: str) -> Path:
        return self.path("document", dossier_id=dossier, doc_id=doc_id)

    def issued_number(self, number: str) -> Path:
        return self.path("issued_number", h=hashlib.sha256(number.encode()).hexdigest())

    def review(self, dossier: str, seq: int | str) -> Path:
        return self.path("review", dossier_id=dossier, seq=str(seq))

    def grant_key(self, dossier: str, grant: str) -> Path:
        return self.path("grant_key", dossier_id=dossier, grant=grant)

    def request(self, number: str, suffix: str = "") -> Path:
        """A request, or with ``suffix`` (``.decision``, ``.used``, ...) a record about it."""
        return self.path("request", R_no=number + suffix)

    def grant(self, number: str, suffix: str = "") -> Path:
        """A grant, or with ``suffix`` (``.closed``) a record about it."""
        return self.path("grant", G_no=number + suffix)

    def hold(self, dossier: str) -> Path:
        return self.path("hold", dossier_id=dossier)

    def destruction(self, number: str, suffix: str = "") -> Path:
        """A destruction request, or with ``suffix`` (``.approval``, ``.certificate``) a record about it."""
        return self.path("destruction", D_no=number + suffix)

    @property
    def index(self) -> Path:
        return self.path("sequence").parent
