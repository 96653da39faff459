"""One upload form being parsed as it streams in: file parts go straight into the intake encryptor.

Fed by python-multipart's callback parser, chunk by chunk. A file part's bytes are handed to a
``StreamedSubmission`` as they arrive, so plaintext is never spooled or held whole; text fields
are small and capped. Anything the browser says about a part besides its field name and file
name (its content type above all) is ignored. Nothing is filed until ``commit``; ``discard``
removes every partial ciphertext.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from vault.errors import InputError
from vault.office import intake
from vault.archive.manifests import CATEGORIES
from vault.archive.manifests import parse_record_date

if TYPE_CHECKING:
    from vault.archive.vault import Vault

MAX_FILENAME = 255
_FILE_FIELD = re.compile(r"f([1-9][0-9]?)\Z")
_TEXT_FIELD = re.compile(r"([cdo])([1-9][0-9]?)\Z")
# RFC 2046 §5.1.1: 1 to 70 of these characters, the last not a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]\Z")


def valid_boundary(boundary: bytes) -> bool:
    """Whether a multipart boundary is one RFC 2046 allows (every browser's is)."""
    return _BOUNDARY.match(boundary) is not None


class TooLarge(Exception):
    """A file or the whole submission went over its limit (``what`` is ``file`` or ``submission``)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class FormProblem(Exception):
    """The form cannot be filed as sent; ``key`` names the message shown to the customer."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    sub: Any = None
    text: bytearray = field(default_factory=bytearray)


def clean_filename(raw: bytes) -> str:
    """A file name for display and the sealed metadata: the last path segment, no control characters.

    It is never used as a path: the ciphertext is stored under a random id.
    """
    name = raw.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:MAX_FILENAME] or "-"


class UploadForm:
    """Callbacks for one multipart body; ``files`` maps row number to (file name, submission)."""

    def __init__(self, v: Vault, *, boundary: bytes, max_file: int, max_files: int, max_body: int,
                 max_submission: int, max_field: int = 1000, max_parts: int = 64) -> None:
        self.v, self.max_file, self.max_files, self.max_field, self.max_parts = v, max_file, max_files, max_field, max_parts
        self.max_submission = max_submission
        self.file_bytes = 0  # of every file part so far: the submission limit counts these
        self.files: dict[int, tuple[str, Any]] = {}
        self.fields: dict[str, str] = {}
        self._parts = 0
        self._part = _Part()
        self._hname = bytearray()
        self._hvalue = bytearray()
        self._headers: dict[str, bytes] = {}
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": self._hfield, "on_header_value": self._hval,
            "on_header_end": self._hend, "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._end, "on_end": self._complete}, max_size=max_body)
        self.complete = False

    def write(self, data: bytes) -> None:
        try:
            self.parser.write(data)
        except FormParserError:  # not multipart as RFC 7578 has it: bytes before the first boundary,
            raise FormProblem("form") from None  # a header line without a colon, an endless header

    def finalize(self) -> None:
        """The body has ended: FormProblem("cut") unless the closing boundary was seen (the parser
        itself does not check that, and a cut body must never be filed)."""
        try:
            self.parser.finalize()
        except FormParserError:
            raise FormProblem("form") from None
        if not self.complete:
            raise FormProblem("cut")

    # -- parser callbacks ---------------------------------------------------------------------------

    def _begin(self) -> None:
        self._parts += 1
        if self._parts > self.max_parts:
            raise FormProblem("form")
        self._part, self._headers = _Part(), {}

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _hval(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _hend(self) -> None:
        self._headers[bytes(self._hname).decode("latin-1").lower()] = bytes(self._hvalue)
        self._hname, self._hvalue = bytearray(), bytearray()

    def _headers_done(self) -> None:
        disposition, params = parse_options_header(self._headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise FormProblem("form")
        part = self._part
        part.name = params[b"name"].decode("utf-8", "replace")
        if b"filename" not in params:
            if not _TEXT_FIELD.match(part.name) or part.name in self.fields:
                raise FormProblem("form")
            return
        m = _FILE_FIELD.match(part.name)
        if not m or int(m.group(1)) > self.max_files or int(m.group(1)) in self.files:
            raise FormProblem("form")
        part.filename = clean_filename(params[b"filename"]) if params[b"filename"] else None
        if part.filename is not None:  # an empty slot is sent with no file name and no bytes
            part.sub = intake.StreamedSubmission(self.v)
            self.files[int(m.group(1))] = (part.filename, part.sub)

    def _data(self, data: bytes, start: int, end: int) -> None:
        part, n = self._part, end - start
        if part.sub is not None:
            if part.sub.size + n > self.max_file:
                raise TooLarge("file")
            if self.file_bytes + n > self.max_submission:
                raise TooLarge("submission")
            self.file_bytes += n
            part.sub.write(memoryview(data)[start:end])
        elif part.filename is None and part.name.startswith("f"):
            if n:
                raise FormProblem("form")  # bytes for a slot without a file name
        else:
            if len(part.text) + n > self.max_field:
                raise FormProblem("form")
            part.text += data[start:end]

    def _end(self) -> None:
        part = self._part
        if part.sub is not None:
            part.sub.finish()
        elif part.filename is None and not part.name.startswith("f"):
            self.fields[part.name] = part.text.decode("utf-8", "replace")

    def _complete(self) -> None:
        self.complete = True

    # -- after the body -----------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Each file with the category, date and original flag of its row; FormProblem if any is bad."""
        if not self.files:
            raise FormProblem("no-file")
        out = []
        for i, (name, sub) in sorted(self.files.items()):
            category = self.fields.get(f"c{i}", "")
            if category not in CATEGORIES:
                raise FormProblem("category")
            try:
                # The vault's own check on a date it records: not in the future, not before 1900.
                date = parse_record_date(self.fields.get(f"d{i}", ""), today=self.v.clock.today())
            except InputError:
                raise FormProblem("date") from None
            out.append({"row": i, "filename": name, "sub": sub, "category": category, "date": date,
                        "original": self.fields.get(f"o{i}") == "1", "size": sub.size})
        return out

    def discard(self) -> None:
        for _, sub in self.files.values():
            sub.discard()
        if self._part.sub is not None:
            self._part.sub.discard()
