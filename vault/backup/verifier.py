"""``backup verify``: every object a snapshot needs is there; with read-data, every byte hashes and decrypts."""

from __future__ import annotations

import datetime as _dt
import io
import random
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import vault.backup.mirror as mirror
import vault.backup.blobstream as blobstream
import vault.backup.packs as packs
from vault.backup.repo import DATA, INDEX, KEYS, SNAPSHOTS, TREES, Repo, check_snapshot, data_name, index_packs
import vault.backup.history as witness
from vault.backup.restorer import fetch_blobs, open_tree
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError, PluginError, VaultError
from vault.store.counting import Progress, no_progress
from vault.store.keytable import KeyTable
from vault.i18n import Message, N_


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any, /) -> int:
        return len(b)


@dataclass
class VerifyReport:
    """Problems name the damaged or missing object; notes are expected (e.g. shredded keys)."""

    snapshots: int = 0
    packs: int = 0
    packs_read: int = 0
    blobs_read: int = 0
    documents_decrypted: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    history: dict[str, Any] | None = None  # the checkpoint the target recorded (count, head, rollbacks)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.__dict__}


#: What ``verify`` says to do about what stops it: a directory of the target that is no directory, a
#: ``config`` that is no file or too large — it cannot look past them, so its own name is no hint.
_LOOKS_NO_FURTHER = N_("the target has been tampered with: put back what it names from a copy you trust, "
                       "or back up to a new, empty target")
_VERIFY_HINTS = (N_("run 'vault backup verify'"), N_("run 'vault backup verify' on the target"))


def verify(repo: Repo, *, read_fraction: float = 0.0, identities: Sequence[age.Identity] | None = None,
           rng: random.Random | None = None, progress: Progress | None = None) -> VerifyReport:
    """Check the repository; ``read_fraction`` of the packs (0 to 1) are downloaded and checked byte by byte.

    With ``identities`` every snapshot's tree is decrypted and compared with its cleartext references,
    and every document read is decrypted with the latest mirrored key table of its dossier.
    """
    try:
        return _verify(repo, read_fraction, identities, rng, progress)
    except IntegrityError as e:
        if isinstance(e.hint, Message) and e.hint.msgid in _VERIFY_HINTS:
            raise IntegrityError.from_error(e, hint=_LOOKS_NO_FURTHER) from None
        raise


def _verify(repo: Repo, read_fraction: float, identities: Sequence[age.Identity] | None,
            rng: random.Random | None, progress: Progress | None) -> VerifyReport:
    rep = VerifyReport()
    cfg = repo.require_config()
    present = set(repo.list(DATA))
    blobs: dict[str, tuple[str, int, int]] = {}
    pack_entries: dict[str, list[tuple[str, int, int]]] = {}
    pack_sizes: dict[str, int] = {}  # as the index says: a pack read as a stream is read no further
    for name in repo.list(INDEX):
        try:  # (every field checked before use: the target's owner can write any JSON)
            for pack_id, (size, entries) in index_packs(_fresh_json(repo, name), name).items():
                pack_entries[pack_id] = entries
                pack_sizes[pack_id] = size
                for b, off, ln in entries:
                    blobs[b] = (pack_id, off, ln)
        except VaultError as e:
            rep.problems.append(e.message)
    rep.packs = len(pack_entries)
    for pack_id in sorted(pack_entries):
        if data_name(pack_id) not in present:
            rep.problems.append(Message(N_("{data_name}: missing (named by the index)"), data_name=data_name(pack_id)))
    snaps, trees = [], set(repo.list(TREES))
    for sid in repo.snapshot_ids():
        try:
            snap = _fresh_json(repo, SNAPSHOTS + sid)
            check_snapshot(snap, SNAPSHOTS + sid)
        except VaultError as e:
            rep.problems.append(e.message)
            continue
        if snap.get("vault_id") != cfg.get("vault_id"):
            rep.problems.append(Message(N_("config: names vault {config}, snapshot {sid} vault {vault} "
                                           "(config or snapshots/{snapshot} changed)"),
                                        config=cfg.get("vault_id"), sid=sid[:8], vault=snap.get("vault_id"), snapshot=sid))
        snap["id"] = sid
        snaps.append(snap)
        rep.snapshots += 1
        if TREES + snap["tree"] not in trees:
            rep.problems.append(Message(N_("{TREES}{tree}: missing (tree of snapshot {sid})"), TREES=TREES, tree=snap['tree'], sid=sid[:8]))
        refs = set(snap["other"]).union(*snap["dossiers"].values())
        for b in sorted(refs):
            if b not in blobs:
                rep.problems.append(Message(N_("blob {b}: missing (in no pack; needed by snapshot {sid})"), b=b[:16], sid=sid[:8]))
            elif data_name(blobs[b][0]) not in present:
                rep.problems.append(Message(N_("{data_name}: missing (holds blob {b} of snapshot {sid})"), data_name=data_name(blobs[b][0]), b=b[:16], sid=sid[:8]))
    # Small objects are read whole, from the target (never the local cache), and hashed against
    # their names: trees and every mirrored key-table generation.
    for name in sorted(trees):
        _hashes_to_name(repo, rep, name, name[len(TREES):])
    rep.history, problems, notes = witness.report(repo, sorted(snaps, key=lambda s: (s["time"], s.get("order", 0))))
    rep.problems += problems
    rep.notes += notes
    gens = mirror.generations(repo)
    for snap in snaps:
        _named_generations(rep, snap, gens)
    for gs in gens.values():
        for g in gs:
            if not g.deleted:
                _hashes_to_name(repo, rep, g.name, g.sha256)
    sample = _sample(pack_entries, read_fraction, rng or random.Random()) if read_fraction > 0 else []
    again = _sample(pack_entries, read_fraction or 1.0, random.Random(0)) if identities is not None else []
    # The bytes of the packs downloaded: once to hash them, and again to decrypt their documents.
    step = (progress or no_progress)(sum(_pack_size(pack_entries[p]) for p in [*sample, *again]))
    if read_fraction > 0:
        _read_data(repo, rep, pack_entries, present, sample, step, pack_sizes)
    if identities is not None:
        _decrypt(repo, rep, snaps, blobs, pack_entries, present, again, identities, gens, step)
    return rep


def _fresh_json(repo: Repo, name: str) -> dict[str, Any]:
    """A JSON object read from the target itself and checked against its name (``get_json`` may
    answer from the local cache, which would hide a change on the target)."""
    data = repo.get(name)
    if packs.sha256_hex(data) != name.rsplit("/", 1)[-1]:
        raise IntegrityError(N_("{name}: damaged (its bytes do not hash to its name)"), name=name)
    return repo.get_json(name)


def _named_generations(rep: VerifyReport, snap: dict[str, Any], gens: dict[str, list[mirror.Generation]]) -> None:
    """Each key generation a snapshot names must be there, unless a later one replaced it (expired
    after the key window, or shredded by a destruction) or the table was shredded whole."""
    try:
        stamp = _dt.datetime.strptime(snap["time"], "%Y-%m-%dT%H:%M:%SZ").strftime("%Y%m%dT%H%M%SZ")
    except ValueError:
        rep.problems.append(Message(N_("{name}: its time does not parse"), name=SNAPSHOTS + snap["id"]))
        return
    for table, gen in sorted((snap.get("keys") or {}).items()):
        have = gens.get(table, [])
        if not isinstance(gen, str) or any(f"{g.stamp}-{g.sha256}" == gen for g in have) or not have:
            continue
        if not any(g.stamp > max(stamp, gen[:16]) for g in have):
            rep.problems.append(Message(N_("{name}: missing (the key-mirror generation snapshot {sid} needs, "
                                           "and none replaced it)"), name=f"{KEYS}{table}/{gen}", sid=snap["id"][:8]))


def _hashes_to_name(repo: Repo, rep: VerifyReport, name: str, want: str) -> None:
    try:
        if packs.sha256_hex(repo.get(name)) != want:
            rep.problems.append(Message(N_("{name}: damaged (its bytes do not hash to its name)"), name=name))
    except VaultError as e:
        rep.problems.append(Message(N_("{name}: {reason}"), name=name, reason=e.message))


def _sample(pack_entries: dict[str, list], fraction: float, rng: random.Random) -> list[str]:
    ids = sorted(pack_entries)
    if fraction >= 1:
        return ids
    return sorted(rng.sample(ids, max(1, round(len(ids) * fraction)) if ids else 0))


def _pack_size(entries: list) -> int:
    return max((off + ln for _, off, ln in entries), default=0)


def _read_data(repo: Repo, rep: VerifyReport, pack_entries: dict[str, list[tuple[str, int, int]]], present: set[str],
               sample: list[str], step: Callable[[int], None], sizes: dict[str, int]) -> None:
    for pack_id in sample:
        name = data_name(pack_id)
        step(_pack_size(pack_entries[pack_id]))
        if name not in present:
            continue  # already named as missing
        rep.packs_read += 1
        try:
            problems = _read_pack(repo, pack_id, name, pack_entries[pack_id], sizes[pack_id] + 1)
        except VaultError as e:
            problems = [Message(N_("{name}: {reason}"), name=name, reason=e.message)]
        rep.blobs_read += len(pack_entries[pack_id])
        rep.problems += problems


def _read_pack(repo: Repo, pack_id: str, name: str, indexed: list[tuple[str, int, int]],
               limit: int | None = None) -> list[Message]:
    """The problems of one pack, read as a stream in 1 MiB pieces (memory does not follow its size):
    the pack as its name says (FORMAT §16.2), and every blob the index names in it. At most ``limit``
    bytes are read (one more than the index's size: a longer pack is damage, however long a target
    says it is)."""
    src = repo.open(name)
    try:
        raw, size = _header_in_place(src)
        seekable = size is not None
        listed = packs.header_entries(raw, size) if size is not None else []  # (the header parsed once)
        ranges = [(off, ln) for _, off, ln in indexed] + [(off, ln) for _, off, ln in listed]
        got = blobstream.hash_ranges(src, ranges, whole=not listed, tail=0 if seekable else _TAIL, limit=limit)
    finally:
        blobstream.close(src)
    size = got.size
    if not seekable:
        raw = _header_from_tail(repo, name, got.tail, size)
    digests, again = dict(got.digests), [seekable]

    def digest(off: int, ln: int) -> str | None:
        if (off, ln) not in digests and not again[0]:  # a range only the header names: read it now
            again[0] = True
            digests.update(_hash_again(repo, name, [(o, n) for _, o, n in packs.header_entries(raw, size)], limit=limit))
        return digests.get((off, ln))

    def whole() -> str:
        return got.whole if got.whole is not None else _hash_again(repo, name, [], whole=True, limit=limit)[(-1, -1)]

    problems: list[Message] = []
    failed: packs.PackDamaged | None = None
    try:
        checked = {(b, off, ln) for b, off, ln in packs.check_streamed(pack_id, raw, size, digest, whole)}
    except packs.PackDamaged as e:
        checked, failed = set(), e
    for b, off, ln in indexed:
        if (b, off, ln) not in checked and digests.get((off, ln)) != b:
            problems.append(Message(N_("{name}: damaged ({reason})"), name=name, reason=Message(packs.BAD_BLOB, blob_id=b[:16])))
    if failed is not None and not problems:
        # Damage outside the blobs the index names (the header, the length, a blob only the
        # header lists): what the pack's own check found, once.
        problems.append(Message(N_("{name}: damaged ({reason})"), name=name, reason=failed.reason))
    return problems


#: The bytes kept from the end of a pack read from a stream that cannot seek, for its header; a
#: longer header is read again from the target.
_TAIL = 1 << 20


def _header_in_place(src: Any) -> tuple[bytes | None, int | None]:
    """(header bytes or None, length) of a pack whose stream can seek, read from its end; then back
    to its start. (None, None) for a stream that cannot seek."""
    if not (getattr(src, "seekable", None) and src.seekable()):
        return None, None
    size = src.seek(0, io.SEEK_END)

    def read_at(off: int, n: int) -> bytes:
        src.seek(off)
        return src.read(n)

    raw = packs.header_of(size, read_at, most=packs.MAX_HEADER)
    src.seek(0)
    return raw, size


def _header_from_tail(repo: Repo, name: str, tail: bytes, size: int) -> bytes | None:
    """The header of a pack read as a stream that cannot seek, from the last bytes of the pass
    (``tail``), or, where it is longer, from a second read of the pack."""
    start = size - len(tail)  # (where the tail begins in the pack)

    def read_at(off: int, n: int) -> bytes:
        if off >= start:
            return tail[off - start : off - start + n]
        src = repo.open(name)
        try:
            blobstream.skip(src, off, name, repo.url)
            return blobstream.read_exactly(src, n)
        finally:
            blobstream.close(src)

    return packs.header_of(size, read_at, most=packs.MAX_HEADER)


def _hash_again(repo: Repo, name: str, ranges: list[tuple[int, int]], *, whole: bool = False,
                limit: int | None = None) -> dict[tuple[int, int], str]:
    src = repo.open(name)
    try:
        got = blobstream.hash_ranges(src, ranges, whole=whole, limit=limit)
    finally:
        blobstream.close(src)
    return {**got.digests, **({(-1, -1): got.whole} if got.whole is not None else {})}


def _check_history(repo: Repo, rep: VerifyReport, snap: dict, tree: dict, blobs: dict) -> None:
    """The snapshot's audit log is the history whose checkpoint the snapshot records."""
    if "history" not in snap:
        return
    log = [f[1] for f in tree["files"] if f[0] == witness.LOG]
    try:
        data = next(iter(fetch_blobs(repo, blobs, log)))[1] if log else b""
    except VaultError as e:
        rep.problems.append(Message(N_("snapshot {id}: {e}"), id=snap['id'][:8], e=e))
        return
    if witness.History(data).point().as_dict() != {k: snap["history"].get(k) for k in ("count", "head")}:
        rep.problems.append(Message(N_("snapshot {id}: its audit log is not the history whose checkpoint it "
                                       "records (entry {count})"), id=snap['id'][:8], count=snap['history'].get('count')))


def _decrypt(repo: Repo, rep: VerifyReport, snaps: list[dict], blobs: dict, pack_entries: dict[str, list],
             present: set[str], sample: list[str], identities: Sequence[age.Identity],
             gens: dict[str, list[mirror.Generation]], step: Callable[[int], None]) -> None:
    documents: dict[str, str] = {}  # blob -> dossier id, for document blobs
    ring_ids: list[age.Identity] = list(identities)
    for snap in snaps:
        try:
            tree, ids = open_tree(repo, snap, ring_ids, blobs)
        except VaultError as e:
            rep.problems.append(Message(N_("snapshot {id}: {e}"), id=snap['id'][:8], e=e))
            continue
        ring_ids = ids
        listed = {f[1] for f in tree["files"]}
        cleartext = set(snap["other"]).union(*snap["dossiers"].values())
        if listed != cleartext:
            rep.problems.append(Message(N_("snapshot {id}: its tree and its cleartext references differ"), id=snap['id'][:8]))
        for path, blob, _, _ in tree["files"]:
            parts = path.split("/")
            if len(parts) == 4 and parts[0] == "dossiers" and parts[2] == "documents":
                documents[blob] = parts[1]
        _check_history(repo, rep, snap, tree, blobs)
    tables: dict[str, KeyTable | None] = {}
    for table, gs in gens.items():
        if gs[-1].deleted or table.startswith("_"):
            continue  # _index.age and other vault keys are not dossier key tables
        try:
            plain = age.decrypt_bytes(repo.get(gs[-1].name), ring_ids)
            tables[table[:-4]] = KeyTable.from_bytes(plain, what=gs[-1].name)
        except NoIdentityMatchError:
            rep.notes.append(Message(N_("{name}: not readable with your identity"), name=gs[-1].name))
        except PluginError as e:  # the target did not give it (a server gone silent): no word on its bytes
            rep.problems.append(Message(N_("{name}: {reason}"), name=gs[-1].name, reason=e.message))
        except (FormatError, AuthenticationError, VaultError):
            rep.problems.append(Message(N_("{name}: does not decrypt (damaged or tampered with)"), name=gs[-1].name))
    for pack_id in sample:
        step(_pack_size(pack_entries[pack_id]))
        wanted = [(b, off, ln) for b, off, ln in pack_entries[pack_id] if b in documents]
        if not wanted or data_name(pack_id) not in present:
            continue
        name = data_name(pack_id)
        docs = blobstream.each_in_place(partial(repo.open, name), wanted, name, repo.url,
                                        take=lambda b: tables.get(documents[b]) is not None)
        try:  # (inside: a pack that is no file is named, not fatal)
            for b, window in docs:
                doc_table = tables[documents[b]]
                assert doc_table is not None
                try:
                    # Read in place, in pieces: memory does not follow the document's size.
                    age.decrypt(io.BufferedReader(window, blobstream.CHUNK), _Null(), [doc_table.identity()])
                    rep.documents_decrypted += 1
                except NoIdentityMatchError:
                    rep.notes.append(Message(N_("blob {b}: its key is no longer mirrored (shredded)"), b=b[:16]))
                except (FormatError, AuthenticationError):
                    rep.problems.append(Message(N_("{data_name}: blob {b} fails authentication"), data_name=name, b=b[:16]))
        except VaultError as e:
            rep.problems.append(Message(N_("{name}: {reason}"), name=name, reason=e.message))
        finally:
            docs.close()

