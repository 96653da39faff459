"""Paper originals: where each is kept, lending against an approved consultation, returns, inventories [R-3.2.3, R-3.4.2].

An original leaves the archive room only for a member holding an approved consultation request for
its dossier (the same approval as a consultation [R-3.4.1]); the loan is a signed record with who took
it and when it is due back, and the return another. An inventory records, for every original the
vault knows, where it was found, and names the missing and the misplaced. Records carry document
numbers, member names, dates and shelf locations — never a customer's data.
"""

from __future__ import annotations

from dataclasses import replace
import datetime as dt
import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TypeVar

from vault.archive import authority, committed, grants, members, numbering, recordtimes
from vault.archive.manifestrecord import Document, Manifest
from vault.archive.paperrecords import Inventory, PaperLoan, PaperReturn
from vault.archive.states import RequestState
from vault.archive.manifests import iter_manifests, load_manifest, manifest_file, parse_date, resolve
from vault.errors import ConflictError, FormatError, InputError, IntegrityError, NotFoundError, PermissionDeniedError
from vault.i18n import N_
from vault.store import make_dir, records

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

#: A paper record kind: each names the archive member who signed it (``by``).
P = TypeVar("P", PaperLoan, PaperReturn, Inventory)

#: The longest loan: a paper original is out of the archive room for at most this many days.
MAX_LOAN_DAYS = 90


def _dir(v: Vault, kind: str) -> Path:
    return v.root / "paper" / kind


def _load(v: Vault, path: Path, kind: type[P]) -> P:
    """A paper record the history committed. Only the archive department lends, takes back and
    counts originals: that is the history's rule (``trust``), so a record signed by anyone else,
    written straight into the directory, moves nothing."""
    what = path.relative_to(v.root).as_posix()
    try:
        rec = committed.load_record(v, what, kind)
    except FormatError as e:
        raise IntegrityError.from_error(e) from None
    signer = members.verify_by_member(v, rec.to_record(), what=what)
    by = rec.by
    if signer["name"] != by or (committed.signer_of(v, what) != by and not committed.adopted(v, what)):
        raise IntegrityError(N_("{what}: signed by {name}, not by {by}"), what=what, name=signer['name'], by=by)
    return rec


def _committed(v: Vault, prefix: str, pattern: str) -> list[Path]:
    """The files under ``prefix`` the history committed and did not remove (a file no entry wrote
    is listed by nothing; ``vault check`` names it)."""
    return [v.root / rel for rel, (h, *_) in sorted(authority.state(v)["files"].items())
            if h is not None and rel.startswith(prefix) and fnmatch.fnmatchcase(rel[len(prefix):], pattern)]


def _location(text: str) -> str:
    """A shelf label: free text on one line (it is shown in tables and lists)."""
    where = text.strip()
    if not where or len(where) > 200 or any(not c.isprintable() for c in where):
        raise InputError(N_("a location is one line of printable text (at most 200 characters)"),
                         hint=N_("e.g. --location 'Room 1/Shelf A/Box 3'"))
    return where


def originals(v: Vault) -> list[dict[str, Any]]:
    """Every live paper original: number, dossier, location (None when none was recorded)."""
    out = []
    for m in iter_manifests(v):
        for d in m.documents:
            if d.original and not d.is_destroyed:
                out.append({"number": d.number, "dossier": m.number, "location": d.paper_location})
    return out


def _original(v: Vault, docno: str) -> tuple[Manifest, Document]:
    m = load_manifest(v, resolve(v, docno))
    d = m.require_document(docno)
    if d.is_destroyed:
        raise ConflictError(N_("document {docno} has been destroyed"), docno=docno)
    if not d.original:
        raise ConflictError(N_("document {docno} is a copy: the archive holds no paper original of it"), docno=docno)
    return m, d


def _check_lent(v: Vault, loan: PaperLoan) -> None:
    """A loan counts only as ``lend`` allows one, judged at its history entry: of a paper original
    of the dossier the entry names, to a member active then, against their access request for that
    dossier approved before it. An archivist's library call skipping ``lend`` is named here."""
    what = f"paper/loans/{loan.number}.toml"
    st = authority.state(v)
    seq = st["files"][what][1]
    fact = st.get("loans", {}).get(loan.number)
    d = None
    if fact is not None and fact["dossier"] == loan.dossier:
        d = load_manifest(v, loan.dossier).document(loan.document)
    if d is None or not d.original:
        raise IntegrityError(N_("{what}: {document} is no paper original of the dossier its history entry names"),
                             what=what, document=loan.document)
    # A loan ``vault migrate`` adopted was lent under version 1, whose history this one does not replay.
    adopted = committed.adopted(v, what)
    borrower = st["members"].get(loan.borrower)
    if borrower is None or (not adopted and (borrower["since"] > seq or (borrower["removed"] is not None
                                                                         and borrower["removed"] < seq))):
        raise IntegrityError(N_("{what}: lent to {borrower}, who was not an active member then"),
                             what=what, borrower=loan.borrower)
    req = st["requests"].get(loan.request)
    decided = st["files"].get(f"requests/{loan.request}.decision.toml")
    if (req is None or req["kind"] != "access" or req["by"] != loan.borrower or req["dossier"] != loan.dossier
            or req["decision"] != RequestState.APPROVED or decided is None or (decided[1] > seq and not adopted)):
        raise IntegrityError(N_("{what}: {request} was not an approved consultation request of {borrower} for this "
                                "dossier when the original was lent"),
                             what=what, request=loan.request, borrower=loan.borrower)
    recordtimes.check(v, what, loan.at, loan.due, dt.timedelta(days=MAX_LOAN_DAYS))


def loans(v: Vault) -> list[dict[str, Any]]:
    """Every loan with its return (if any), verified, in number order."""
    out = []
    for p in _committed(v, "paper/loans/", "L-*.toml"):
        if "." in p.stem:
            continue
        loan = _load(v, p, PaperLoan)
        if loan.number != p.stem:
            raise IntegrityError(N_("paper/loans/{name}: belongs to another loan"), name=p.name)
        _check_lent(v, loan)
        row: dict[str, Any] = {"number": loan.number, "document": loan.document, "borrower": loan.borrower,
                               "request": loan.request, "by": loan.by, "at": loan.at, "due": loan.due}
        ret = p.with_name(f"{p.stem}.returned.toml")
        if committed.exists(v, f"paper/loans/{ret.name}"):
            r = _load(v, ret, PaperReturn)
            if r.loan != loan.number or r.document != loan.document:
                raise IntegrityError(N_("paper/loans/{name}: returns another loan"), name=ret.name)
            row.update(returned_at=r.at, received_by=r.by, location=r.location)
        out.append(row)
    return out


def lend(actor: Actor, docno: str, *, to: str, request: str, due: str) -> str:
    """Lend a paper original out of the archive room to ``to``, against their approved consultation
    request ``request`` for its dossier [R-3.4.1, R-3.4.2]; returns the loan number."""
    actor.require("grant.manage", number=docno)
    v = actor.vault
    due = parse_date(due)
    today = actor.clock.today_date()
    if not today <= dt.date.fromisoformat(due) <= today + dt.timedelta(days=MAX_LOAN_DAYS):
        raise InputError(N_("due date {due} is not within {MAX_LOAN_DAYS} days from today"),
                         hint=N_("pass --due YYYY-MM-DD, at most 90 days ahead"), due=due, MAX_LOAN_DAYS=MAX_LOAN_DAYS)
    with v.lock(exclusive=True):
        m, d = _original(v, docno)
        st = grants.status(v, request)
        req = grants.request_record(v, request)
        ok = (req.kind == "access" and req.requester == to and req.dossier == m.id
              and st["state"] in ("approved", "granted"))
        if not ok:
            actor.audit("paper.lend", outcome="refused", number=docno, ref=request)
            raise PermissionDeniedError(
                N_("{request} is not an approved consultation request of {to} for dossier {number}"),
                hint=N_("the borrower files 'vault request access NO --purpose …' and their department head approves it"), request=request, to=to, number=m.number)
        mem = members.all_members(v)
        if mem.get(to, {}).get("status") != "active":
            raise ConflictError(N_("{to} is not an active member"), to=to)
        out = [x for x in loans(v) if x["document"] == docno and "returned_at" not in x]
        if out:
            raise ConflictError(N_("the original of {docno} is already out ({number} to {borrower})"),
                                hint=N_("record its return first: 'vault paper return {number}'"), docno=docno, number=out[0]['number'], borrower=out[0]['borrower'])
        no = numbering.next_number(v, "L")
        rec = {"format": 1, "number": no, "document": docno, "dossier": m.id, "borrower": to,
               "request": request, "from_location": d.paper_location or "", "at": actor.clock.stamp(),
               "by": actor.name, "due": due}
        make_dir(_dir(v, "loans"), parents=True)
        actor.commit("paper.lend", {f"paper/loans/{no}.toml": records.dump_toml(actor.sign(rec))}, number=docno,
                     ref=no, obj=m.id)
    return no


def give_back(actor: Actor, loan_no: str, *, location: str | None = None) -> dict[str, Any]:
    """Record that a lent original is back in the archive room (at ``location``, by default where it
    came from; a new place is written to the manifest)."""
    actor.require("grant.manage")
    v = actor.vault
    with v.lock(exclusive=True):
        loan = next((x for x in loans(v) if x["number"] == loan_no), None)
        if loan is None:
            raise NotFoundError(N_("no loan {loan_no}"), hint=N_("see 'vault paper out'"), loan_no=loan_no)
        if "returned_at" in loan:
            raise ConflictError(N_("{loan_no} was returned on {returned_at}"), loan_no=loan_no, returned_at=loan['returned_at'])
        rec0 = committed.load_record(v, f"paper/loans/{loan_no}.toml", PaperLoan)
        if not (location or rec0.from_location).strip():
            raise InputError(N_("no location is recorded for {document}"), hint=N_("pass --location SHELF"), document=loan['document'])
        where = _location(location or rec0.from_location)
        rec = {"format": 1, "loan": loan_no, "document": loan["document"], "at": actor.clock.stamp(), "by": actor.name,
               "location": where}
        files: dict[str, bytes | None] = {f"paper/loans/{loan_no}.returned.toml": records.dump_toml(actor.sign(rec))}
        m = load_manifest(v, rec0.dossier)
        d = m.document(loan["document"])
        # Destruction shreds keys, not paper: a destroyed original still comes back, its ghost untouched.
        if where != rec0.from_location and d is not None and not d.is_destroyed:
            m, moved = _moved(actor, m, loan["document"], where)
            files.update(moved)
        # One entry: the return and, if it came back elsewhere, the manifest's new location.
        actor.commit("paper.return", files, number=loan["document"], ref=loan_no, obj=m.id,
                     rev=m.revision if len(files) > 1 else None)
    return {**loan, "returned_at": rec["at"], "received_by": actor.name, "location": where}


def _moved(actor: Actor, m: Manifest, docno: str, location: str) -> tuple[Manifest, dict[str, bytes | None]]:
    """The manifest with the original's new location (its revision raised), and it as files to commit."""
    d = m.document(docno)
    assert d is not None  # (the caller found it in this manifest)
    m = replace(m.with_documents(replace(d, paper_location=location)), revision=m.revision + 1)
    return m, manifest_file(actor, m)


def locate(actor: Actor, docno: str, location: str) -> None:
    """Record where a paper original is kept [R-3.2.3] (a signed manifest change)."""
    actor.require("doc.add", number=docno)
    where = _location(location)
    with actor.vault.lock(exclusive=True):
        m, _ = _original(actor.vault, docno)
        m, files = _moved(actor, m, docno, where)
        actor.commit("paper.locate", files, number=docno, obj=m.id, rev=m.revision)


def out(v: Vault, *, today: str | None = None) -> list[dict[str, Any]]:
    """Originals out of the archive room: loans not returned, each with ``overdue``."""
    day = today or v.clock.today()
    return [{**x, "overdue": x["due"] < day} for x in loans(v) if "returned_at" not in x]


def inventory(actor: Actor, found: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Record a periodic inventory: ``found`` is (document number, where it was found) for each
    original seen. Returns the signed report: found, misplaced (found elsewhere than recorded),
    missing (neither found nor out on loan), out (on loan), unknown (not a live original)."""
    actor.require("doc.add")
    v = actor.vault
    seen: dict[str, str] = {}
    for docno, where in found:
        seen[docno] = _location(where)
    with v.lock(exclusive=True):
        known = {o["number"]: o for o in originals(v)}
        lent = {x["document"] for x in out(v)}
        report = {
            "found": [{"document": n, "location": w} for n, w in sorted(seen.items()) if n in known],
            "misplaced": [{"document": n, "location": w, "recorded": known[n]["location"] or ""}
                          for n, w in sorted(seen.items()) if n in known and w != known[n]["location"]],
            "missing": sorted(n for n in known if n not in seen and n not in lent),
            "out": sorted(n for n in known if n not in seen and n in lent),
            "unknown": sorted(n for n in seen if n not in known),
        }
        no = numbering.next_number(v, "I")
        rec = {"format": 1, "number": no, "at": actor.clock.stamp(), "by": actor.name, **report}
        make_dir(_dir(v, "inventories"), parents=True)
        actor.commit("paper.inventory", {f"paper/inventories/{no}.toml": records.dump_toml(actor.sign(rec))},
                     ref=no)
    return {"number": no, "at": rec["at"], "by": actor.name, **report}


def inventories(v: Vault) -> list[dict[str, Any]]:
    """Every recorded inventory, verified, oldest first."""
    outl = []
    for p in _committed(v, "paper/inventories/", "I-*.toml"):
        rec = _load(v, p, Inventory)
        if rec.number != p.stem:
            raise IntegrityError(N_("paper/inventories/{name}: belongs to another inventory"), name=p.name)
        outl.append({k: x for k, x in rec.to_record().items() if k not in ("format", "signature")})
    return outl
