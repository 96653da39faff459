"""Built-in export formats ``json``, ``csv`` (the catalogue), ``bagit`` (RFC 8493) and ``age`` (a re-wrapped bundle)."""

from __future__ import annotations

from vault.i18n import _, Message, N_
import csv
import hashlib
import importlib.metadata
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

from vault.crypto import age
from vault.store import csvcells, layout
from vault.hookspecs import hookimpl

if TYPE_CHECKING:
    from vault.archive.exportview import ExportDocument, ExportDossier

#: Catalogue columns every caller gets: cleartext manifest facts (docs/FORMAT.md §9).
COLUMNS = ("number", "dossier", "category", "date", "original", "version", "replaces", "superseded_by",
           "status", "current", "size", "sha256", "added_at", "added_by", "paper_location",
           "class", "dept", "customer_type", "business")
#: Columns added only for a caller who may read the dossier and used a copy approval.
SEALED_COLUMNS = ("customer", "title", "source", "filename", "copy_note")
CATALOGUE_FORMAT = "vault-catalogue-1"
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})\Z")


def safe_name(docno: str) -> str:
    """A file name for a document number (``vault.store.layout.document_file_name``)."""
    return layout.document_file_name(docno)


def bag_name(docno: str) -> str:
    """A payload file name for a document number in a bag: ``safe_name`` with each ``%XX`` written ``=XX``.

    Still injective (``=`` is itself escaped by ``safe_name``), and free of ``%``: RFC 8493 has a
    manifest percent-encode ``%``, which not every validator decodes, so a name with one would be
    found by some readers and missing to others.
    """
    return safe_name(docno).replace("%", "=")


def _without_options(name: str, cls: type) -> Any:
    """A factory for a format that takes no options: an unexpected one is an error, not ignored."""

    def factory(options: Mapping[str, Any]) -> Any:
        if options:
            raise ValueError(Message(N_("export format {name} takes no options, not {options}"), name=name, options=', '.join(sorted(options))))
        return cls()

    return factory


def catalogue(dossier: ExportDossier, documents: Sequence[Any]) -> dict[str, Any]:
    """The catalogue as a dict: dossier facts and one row per document; sealed fields only where granted."""
    sealed = getattr(dossier, "readable", False)
    head = dict(dossier)
    if sealed:
        head["customer"] = dossier.profile().get("name", "")
    rows = []
    for doc in documents:
        row = {k: doc.facts.get(k) for k in COLUMNS[:15]}
        row["current"] = bool(doc.current)  # derived, not a manifest fact: not in doc.facts
        row.update({k: dossier.get(k) for k in COLUMNS[15:]})
        if sealed:
            meta = doc.meta() if doc.readable else {}
            row.update({"customer": head["customer"], **{k: meta.get(k) for k in SEALED_COLUMNS[1:]}})
        rows.append(row)
    return {"format": CATALOGUE_FORMAT, "sealed": sealed, "dossier": head, "documents": rows}


def _json_bytes(data: Any) -> bytes:
    # Sorted keys and no timestamp: the same dossier always gives the same bytes.
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


class JsonCatalogue:
    """The catalogue as one JSON document."""

    kind, suffix = "file", ".json"
    reads = frozenset({"sealed"})

    def export(self, *, dossier: ExportDossier, documents: Sequence[ExportDocument], dest: BinaryIO, **kwargs: Any) -> None:
        dest.write(_json_bytes(catalogue(dossier, documents)))


class CsvCatalogue:
    """The catalogue as CSV (RFC 4180, UTF-8), one row per document; sealed columns only when granted.

    A UTF-8 byte-order mark leads the file unless ``bom`` is false: without it, a spreadsheet on a
    Chinese Windows desktop reads the UTF-8 as the local code page and shows mojibake.
    """

    kind, suffix = "file", ".csv"
    reads = frozenset({"sealed"})

    def __init__(self, *, bom: bool = True) -> None:
        self.bom = bom

    def export(self, *, dossier: ExportDossier, documents: Sequence[ExportDocument], dest: BinaryIO, **kwargs: Any) -> None:
        data = catalogue(dossier, documents)
        columns = COLUMNS + (SEALED_COLUMNS if data["sealed"] else ())
        text = io.StringIO(newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(columns)
        for row in data["documents"]:
            writer.writerow([csvcells.cell(row.get(c)) for c in columns])
        dest.write((csvcells.BOM if self.bom else "").encode() + text.getvalue().encode())


def _csv_factory(options: Mapping[str, Any]) -> CsvCatalogue:
    extra = sorted(set(options) - {"bom"})
    if extra:
        raise ValueError(Message(N_("export format csv takes only the option bom, not {extra}"), extra=', '.join(extra)))
    bom = options.get("bom", True)
    if not isinstance(bom, bool):
        raise ValueError(Message(N_("export format csv: bom must be true or false")))
    return CsvCatalogue(bom=bom)


def _extension(doc: Any) -> str:
    # Only the extension of the sealed file name is used, so the files open in the right program;
    # the name itself (which may name the customer) stays out of the bag.
    match = _EXTENSION.search(doc.meta().get("filename", "")) if doc.readable else None
    return f".{match.group(1).lower()}" if match else ""


class BagItExporter:
    """An RFC 8493 bag of the dossier's current documents, in plaintext, with SHA-256 and SHA-512 manifests."""

    kind, suffix = "directory", ""
    reads = frozenset({"content", "sealed"})
    algorithms = ("sha256", "sha512")

    def export(self, *, dossier: ExportDossier, documents: Sequence[ExportDocument], dest: Path, **kwargs: Any) -> None:
        data = dest / "data"
        data.mkdir()
        manifests: dict[str, list[str]] = {a: [] for a in self.algorithms}
        octets = count = 0
        for doc in documents:
            if not doc.current:
                continue
            name = bag_name(doc.number) + _extension(doc)
            hashes = {a: hashlib.new(a) for a in self.algorithms}
            with doc.open() as src, open(data / name, "xb") as out:
                while block := src.read(1 << 20):
                    out.write(block)
                    octets += len(block)
                    for h in hashes.values():
                        h.update(block)
            count += 1
            for a, h in hashes.items():
                manifests[a].append(f"{h.hexdigest()}  data/{name}\n")
        tags = {"bagit.txt": "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
                "bag-info.txt": _bag_info(dossier, octets, count)}
        tags.update({f"manifest-{a}.txt": "".join(sorted(lines)) for a, lines in manifests.items()})
        for name, text in tags.items():
            (dest / name).write_text(text, encoding="utf-8")
        for a in self.algorithms:
            lines = [f"{hashlib.new(a, text.encode()).hexdigest()}  {name}\n" for name, text in sorted(tags.items())]
            (dest / f"tagmanifest-{a}.txt").write_text("".join(lines), encoding="utf-8")


def _bag_info(dossier: ExportDossier, octets: int, count: int) -> str:
    # Archive facts and export details only: the documents are the bag's only customer data.
    fields = [
        ("Bag-Software-Agent", f"vault {_version()}"),
        ("Bagging-Date", dossier.exported_at[:10]),
        ("External-Identifier", dossier["number"]),
        ("External-Description", f"current documents of dossier {dossier['number']}, exported from vault"),
        ("Payload-Oxum", f"{octets}.{count}"),
        ("Vault-Class", dossier["class"]),
        ("Vault-Exported-At", dossier.exported_at),
        ("Vault-Exported-By", dossier.exported_by),
        ("Vault-Copy-Request", dossier.request or "none"),
    ]
    return "".join(f"{k}: {v}\n" for k, v in fields)


def _version() -> str:
    try:
        return importlib.metadata.version("vault")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class AgeBundle:
    """A directory any holder of the recipients opens with ``age -d``: each document re-wrapped, never re-encrypted.

    ``<safe-name>.age`` per current document (the vault's payload bytes, with a new header for the
    recipients), ``catalogue.json.age`` (the full catalogue, encrypted to the same recipients, with
    each row's ``file``) and ``README.txt`` (how to open it; no customer data).
    """

    kind, suffix = "directory", ""
    reads = frozenset({"content", "sealed"})

    def __init__(self, options: Mapping[str, Any]) -> None:
        unknown = set(options) - {"recipients"}
        if unknown:
            raise ValueError(Message(N_("export format age takes only recipients, not {unknown}"), unknown=', '.join(sorted(unknown))))
        recipients = options.get("recipients") or []
        if isinstance(recipients, str) or not recipients or not all(isinstance(r, str) for r in recipients):
            raise ValueError(Message(N_("export format age needs at least one --recipient age1…")))
        parsed = [age.parse_recipient(r) for r in recipients]
        age.encrypt_bytes(b"", parsed)  # refuses post-quantum and classical recipients mixed, before any export
        self.recipients = [r.strip() for r in recipients]

    def export(self, *, dossier: ExportDossier, documents: Sequence[ExportDocument], dest: Path, **kwargs: Any) -> None:
        data = catalogue(dossier, documents)
        files = {}
        for doc in documents:
            if not doc.current:
                continue
            files[doc.number] = f"{safe_name(doc.number)}.age"
            with open(dest / files[doc.number], "xb") as out:
                doc.rewrap(out, self.recipients)
        data["documents"] = [dict(row, file=files.get(row["number"])) for row in data["documents"]]
        (dest / "catalogue.json.age").write_bytes(
            age.encrypt_bytes(_json_bytes(data), [age.parse_recipient(r) for r in self.recipients]))
        # For whoever receives the export, in the language of the one who made it.
        (dest / "README.txt").write_text(
            _("Export of vault dossier {number}: one age file per current document, and\n"
              "catalogue.json.age listing every document. Open each with the age tool and your key:\n").format(
                number=dossier["number"])
            + "\n    age -d -i key.txt -o catalogue.json catalogue.json.age\n", encoding="utf-8")


@hookimpl
def vault_register_export_formats(register: Callable[[str, Any], None]) -> None:
    register("json", _without_options("json", JsonCatalogue))
    register("csv", _csv_factory)
    register("bagit", _without_options("bagit", BagItExporter))
    register("age", AgeBundle)
