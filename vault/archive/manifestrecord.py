"""A dossier's manifest, its documents and profile versions, typed (``dossiers/<id>/manifest.toml``, FORMAT §9).

The frozen dataclasses of ``schemas/manifest.schema.json``; see ``vault.store.typed`` for how a
record is read (validated) and written back (same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Mapping

from vault.archive.states import DossierStatus
from vault.errors import NotFoundError
from vault.i18n import N_
from vault.store.typed import Signature, TypedPart, TypedRecord, key, order, part, state


@dataclass(frozen=True, slots=True)
class ProfileVersion(TypedPart):
    """One version of the customer's profile: its fields sealed under key ``key`` of the key table
    (no ``sealed`` once the dossier is destroyed)."""

    version: int
    key: str
    at: str
    by: str
    #: the profile fields this version changed
    fields: tuple[str, ...]
    sealed: str | None = None
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Destroyed(TypedPart):
    """What is left of a destroyed document's keys: when, and the certificate that says so."""

    at: str
    certificate: str
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Document(TypedPart):
    """A document of the dossier: its ciphertext's hash and size, its sealed metadata, its life.

    ``key``, ``meta_key`` and ``meta`` are gone (and ``destroyed`` set) once it is destroyed."""

    number: str
    id: str
    category: str
    date: str
    original: bool
    version: int
    added_at: str
    added_by: str
    size: int
    sha256: str
    key: str | None = None
    meta_key: str | None = None
    meta: str | None = None
    replaces: str | None = None
    superseded_by: str | None = None
    paper_location: str | None = None
    #: ``current`` or ``destroyed`` (absent: current)
    status: str | None = None
    #: the retention events recorded for it (event name → date)
    events: Mapping[str, str] | None = None
    destroyed: Destroyed | None = field(default=None, metadata=part(Destroyed))
    keys_: tuple[str, ...] = order()

    @property
    def is_destroyed(self) -> bool:
        return self.status == "destroyed"

    @property
    def is_current(self) -> bool:
        """Neither destroyed nor superseded by a newer version."""
        return not self.is_destroyed and self.superseded_by is None


@dataclass(frozen=True, slots=True)
class Reopening(TypedPart):
    """A closed dossier reopened: when, by whom, and the closing date it cancelled."""

    at: str
    by: str
    closed: str
    keys_: tuple[str, ...] = order()


@dataclass(frozen=True, slots=True)
class Manifest(TypedRecord):
    """``dossiers/<id>/manifest.toml``: a dossier's cleartext facts, sealed profile and documents,
    signed by the member who wrote it last."""

    KIND: ClassVar[str] = "manifest"
    format: int
    id: str
    number: str
    customer_type: str
    business: str
    dept: str
    class_: str = field(metadata=key("class"))
    created: str
    created_at: str
    created_by: str
    status: DossierStatus = field(metadata=state(DossierStatus))
    revision: int
    next_doc: int
    profile: tuple[ProfileVersion, ...] = field(metadata=part(ProfileVersion))
    documents: tuple[Document, ...] = field(metadata=part(Document))
    updated_at: str
    updated_by: str
    signature: Signature = field(metadata=part(Signature))
    #: the closing date while the dossier is closed
    closed: str | None = None
    reopened: tuple[Reopening, ...] | None = field(default=None, metadata=part(Reopening))
    keys_: tuple[str, ...] = order()

    def document(self, number: str) -> Document | None:
        """The document numbered ``number``, if the dossier has it."""
        return next((d for d in self.documents if d.number == number), None)

    def facts(self) -> dict[str, str]:
        """The dossier's cleartext facts any member may see (FORMAT §9): number, customer type,
        business, department, class, created, status."""
        return {"number": self.number, "customer_type": self.customer_type, "business": self.business,
                "dept": self.dept, "class": self.class_, "created": self.created, "status": self.status.value}

    def require_document(self, number: str) -> Document:
        """The document numbered ``number``; NotFoundError, saying where to look, if the dossier has none."""
        d = self.document(number)
        if d is None:
            raise NotFoundError(N_("no document {docno}"), hint=N_("see 'vault doc list {number}'"), docno=number,
                                number=self.number)
        return d

    def with_documents(self, *docs: Document) -> Manifest:
        """This manifest with ``docs`` in place of its documents of the same numbers (a new value)."""
        new = {d.number: d for d in docs}
        return replace(self, documents=tuple(new.get(d.number, d) for d in self.documents))
