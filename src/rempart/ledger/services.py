"""Use cases of the ledger: append events, prove, checkpoint, verify (RFC 9162, C2SP).

Appends lock the head row, so leaves are numbered without gaps across every process; each
append stores the tree nodes it completes, so proofs never rehash leaves. Verification also
takes checkpoints kept outside the database (by the insurers): those, an intruder in the
database cannot re-sign along with a rewritten history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from rempart.crypto.keyring import Keyring
from rempart.db import table_of, transaction, utcnow
from rempart.errors import Conflict, IntegrityFailure, InvalidInput, NotFound, VerificationError
from rempart.ledger import merkle, nodes
from rempart.ledger.checkpoint import (
    Checkpoint,
    open_checkpoint,
    open_log_checkpoint,
    sign_checkpoint,
)
from rempart.ledger.events import AccessEvent
from rempart.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerHead, LedgerNode

HEAD_ID = 1
VERIFY_CHUNK = 10_000


_HEAD = table_of(LedgerHead)
_ENTRIES = table_of(LedgerEntry)
_NODES = table_of(LedgerNode)
# Built once: constructing a statement costs more than executing it on the rights-check path.
_READ_HEAD = select(_HEAD.c.size, _HEAD.c.frontier).where(_HEAD.c.id == HEAD_ID)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_NEW_HEAD = insert(_HEAD)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(size=bindparam("size"), frontier=bindparam("frontier"))
)
_ADD_ENTRIES = insert(_ENTRIES)
_ADD_NODES = insert(_NODES)
_NODE = select(_NODES.c.hash).where(
    _NODES.c.level == bindparam("level"), _NODES.c.index == bindparam("index")
)


def _connection(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


def _head(session: Session | Connection, lock: bool) -> tuple[int, bytes | None]:
    """The tree's size and stored frontier; the row is created with the first use of the log.

    Core statements on the connection, not the ORM: this is on the path of every rights check.
    """
    connection = _connection(session)
    found = connection.execute(_LOCK_HEAD if lock else _READ_HEAD).first()
    if found is None:
        connection.execute(_NEW_HEAD, [{"id": HEAD_ID, "size": 0, "frontier": b""}])
        return 0, b""
    return found[0], found[1]


def _stored(session: Session | Connection) -> Callable[[int, int], bytes]:
    connection = _connection(session)
    cache: dict[tuple[int, int], bytes] = {}

    def lookup(level: int, index: int) -> bytes:
        if (level, index) not in cache:
            found = connection.execute(_NODE, {"level": level, "index": index}).scalar()
            if found is None:
                raise VerificationError(f"expected tree node ({level}, {index}), got none")
            cache[(level, index)] = found
        return cache[(level, index)]

    return lookup


def append_events(session: Session | Connection, events: Sequence[AccessEvent]) -> list[int]:
    """Append events in the caller's transaction; returns their sequence numbers."""
    if not events:
        return []
    connection = _connection(session)
    size, frontier = _head(connection, lock=True)
    levels = [level for level, _ in nodes.frontier(size)]
    if frontier is not None and len(frontier) == 32 * len(levels):
        hashes = [frontier[i * 32 : (i + 1) * 32] for i in range(len(levels))]
    else:
        stored = _stored(connection)
        hashes = [stored(level, index) for level, index in nodes.frontier(size)]
    siblings = dict(zip(levels, hashes, strict=True))
    entries, completed, first = [], [], size
    for offset, event in enumerate(events):
        encoded = event.encode()
        completed += nodes.append(first + offset, merkle.leaf_hash(encoded), siblings)
        entries.append(
            {
                "seq": first + offset,
                "at": event.at,
                "tag": event.tag,
                "actor": event.actor,
                "tenant": event.tenant,
                "beneficiary": event.beneficiary,
                "event": encoded,
            }
        )
    connection.execute(_ADD_ENTRIES, entries)
    connection.execute(_ADD_NODES, [{"level": lv, "index": i, "hash": h} for lv, i, h in completed])
    frontier = b"".join(siblings[level] for level in sorted(siblings, reverse=True))
    connection.execute(_MOVE_HEAD, {"size": first + len(events), "frontier": frontier})
    return list(range(first, first + len(events)))


def tree_size(session: Session) -> int:
    return _head(session, lock=False)[0]


def root_at(session: Session, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    return nodes.subtree_hash(0, size, _stored(session))


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    size: int
    leaf_hash: bytes
    proof: list[bytes]
    root: bytes
    event: bytes


def prove_inclusion(
    sessions: sessionmaker[Session], seq: int, size: int | None = None
) -> InclusionProof:
    """The proof that entry ``seq`` is in the tree of ``size`` leaves (default: the current)."""
    with transaction(sessions) as session:
        size = tree_size(session) if size is None else size
        if not 0 <= seq < size <= tree_size(session):
            raise InvalidInput(f"entry {seq} is not in a tree of {size} entries", field="seq")
        entry = session.get(LedgerEntry, seq)
        if entry is None:
            raise NotFound(f"entry {seq} is missing from the ledger")
        stored = _stored(session)
        proof = merkle.inclusion_proof(
            seq, size, lambda start, end: nodes.subtree_hash(start, end, stored)
        )
        return InclusionProof(
            seq, size, merkle.leaf_hash(entry.event), proof, root_at(session, size), entry.event
        )


def prove_consistency(sessions: sessionmaker[Session], size1: int, size2: int) -> list[bytes]:
    with transaction(sessions) as session:
        if not 0 < size1 <= size2 <= tree_size(session):
            raise InvalidInput("sizes must satisfy 0 < size1 <= size2 <= the tree size")
        stored = _stored(session)
        return merkle.consistency_proof(
            size1, size2, lambda start, end: nodes.subtree_hash(start, end, stored)
        )


def make_checkpoint(sessions: sessionmaker[Session], keyring: Keyring, origin: str) -> str:
    """Sign the current size and root; returns the note (kept, and handed to insurers)."""
    with transaction(sessions) as session:
        size = _head(session, lock=True)[0]
        existing = session.get(LedgerCheckpoint, size)
        if existing is not None:
            return existing.note
        root = root_at(session, size)
        note = sign_checkpoint(Checkpoint(origin, size, root), origin, keyring.signing_key(session))
        session.add(LedgerCheckpoint(size=size, root=root, note=note, created_at=utcnow()))
        return note


def public_key(sessions: sessionmaker[Session], keyring: Keyring) -> Ed25519PublicKey:
    with transaction(sessions) as session:
        return keyring.signing_key(session).public_key()


@dataclass(frozen=True)
class EventsPage:
    """One insurer's entries, each proved in the tree of ``size`` leaves."""

    size: int
    root: bytes
    note: str | None  # the signed checkpoint of that size, when there is one
    proofs: list[InclusionProof]
    more: bool  # whether entries of this insurer follow the last one, below ``size``


def tenant_events(
    sessions: sessionmaker[Session], tenant: str, after: int, limit: int, size: int | None = None
) -> EventsPage:
    """The entries whose insurer is ``tenant``, from ``after`` (excluded) in sequence order, with
    their inclusion proofs in the tree of ``size`` leaves (default: the latest checkpoint's, so
    that each proof checks against a note the insurer can keep)."""
    with transaction(sessions) as session:
        size, note = _proof_size(session, size)
        found = session.execute(
            select(LedgerEntry.seq, LedgerEntry.event)
            .where(LedgerEntry.tenant == tenant, LedgerEntry.seq > after, LedgerEntry.seq < size)
            .order_by(LedgerEntry.seq)
            .limit(limit + 1)
        ).all()
        stored = _stored(session)  # shared by the proofs: they have their upper nodes in common

        def get_hash(start: int, end: int) -> bytes:
            return nodes.subtree_hash(start, end, stored)

        root = root_at(session, size)
        proofs = []
        for seq, event in found[:limit]:
            _check_tenant(seq, event, tenant)
            proof = merkle.inclusion_proof(seq, size, get_hash)
            proofs.append(InclusionProof(seq, size, merkle.leaf_hash(event), proof, root, event))
        return EventsPage(size, root, note, proofs, len(found) > limit)


def latest_about(
    session: Session,
    tenant: str,
    limit: int,
    before: int | None = None,
    beneficiaries: Sequence[str] | None = None,
) -> list[tuple[int, AccessEvent]]:
    """The entries about an insurer's members (about these ``beneficiaries`` only, if given),
    newest first, below ``before``: for the insurer's own pages. The columns chose the rows; the
    signed events are what is shown, so they must agree."""
    query = select(LedgerEntry.seq, LedgerEntry.event).where(LedgerEntry.tenant == tenant)
    if before is not None:
        query = query.where(LedgerEntry.seq < before)
    if beneficiaries is not None:
        query = query.where(LedgerEntry.beneficiary.in_(list(beneficiaries)))
    found = []
    for seq, encoded in session.execute(query.order_by(LedgerEntry.seq.desc()).limit(limit)):
        event = AccessEvent.decode(encoded)
        if event.tenant != tenant or (
            beneficiaries is not None and event.beneficiary not in beneficiaries
        ):
            raise IntegrityFailure(f"entry {seq}: its columns differ from the event it records")
        found.append((seq, event))
    return found


def _proof_size(session: Session, size: int | None) -> tuple[int, str | None]:
    """The tree size to prove in, and the note signed for it if any."""
    if size is None:
        latest = session.scalars(
            select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1)
        ).first()
        if latest is None:
            raise Conflict(
                "no checkpoint has been signed yet: get /api/v1/ledger/checkpoint first, "
                "or give a size"
            )
        return latest.size, latest.note
    if not 0 <= size <= tree_size(session):
        raise InvalidInput("the size must be at most the tree's current size", field="size")
    kept = session.get(LedgerCheckpoint, size)
    return size, kept.note if kept else None


def _check_tenant(seq: int, encoded: bytes, tenant: str) -> None:
    # The column selected the entry; the signed leaf is what is handed out: they must agree, or
    # an altered column could show an insurer another insurer's event.
    try:
        recorded = AccessEvent.decode(encoded).tenant
    except (ValueError, TypeError, KeyError):
        recorded = None
    if recorded != tenant:
        raise IntegrityFailure(f"entry {seq}: column tenant differs from the event it records")


@dataclass
class LedgerReport:
    size: int = 0
    entries: int = 0
    checkpoints: int = 0
    kept: int = 0  # checkpoints kept outside the database, opened with the platform key
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_ledger(
    sessions: sessionmaker[Session],
    keyring: Keyring,
    origin: str,
    progress: Callable[[int, int], None] | None = None,
    external: Sequence[str] = (),
) -> LedgerReport:
    """Recompute the whole tree from the entries and check it against the stored nodes, every
    signed checkpoint, and the ``external`` ones (signed notes kept by insurers, numbered from 1
    in the problems); name each entry or node that was modified, deleted or inserted."""
    report = LedgerReport()
    with transaction(sessions) as session:
        report.size = size = tree_size(session)
        key = keyring.signing_key(session).public_key()
        signed = _Signed(
            _checked_checkpoints(session, origin, key, report),
            _kept_checkpoints(external, origin, key, report),
        )
        siblings: dict[int, bytes] = {}
        expected = 0
        signed.check(0, siblings, report)  # a kept note of the empty log
        for chunk in _chunks(session):
            recomputed: dict[tuple[int, int], bytes] = {}
            for entry in chunk:
                report.entries += 1
                if entry.seq >= size:
                    report.problems.append(
                        f"entry {entry.seq} lies beyond the head ({size}): inserted"
                    )
                    continue
                while expected < entry.seq:
                    report.problems.append(f"entry {expected} is missing: deleted")
                    expected = _skip(session, expected, siblings)
                    signed.check(expected, siblings, report)
                _check_columns(entry, report)
                for level, index, h in nodes.append(
                    expected, merkle.leaf_hash(entry.event), siblings
                ):
                    recomputed[(level, index)] = h
                expected += 1
                signed.check(expected, siblings, report)
            _compare_nodes(session, recomputed, report)
            if progress:
                progress(expected, size)
        while expected < size:
            report.problems.append(f"entry {expected} is missing: deleted")
            expected += 1
        signed.report_truncation(report)
    return report


@dataclass
class _Signed:
    """The roots signed for each size: in the database, and kept by insurers (number, root)."""

    stored: dict[int, bytes]
    kept: dict[int, list[tuple[int, bytes]]]

    def check(self, size: int, siblings: dict[int, bytes], report: LedgerReport) -> None:
        """Compare the roots signed for ``size`` with the recomputed one, once it is reached."""
        if size not in self.stored and size not in self.kept:
            return
        root = nodes.frontier_root(siblings)
        if size in self.stored:
            _check_root(size, root, self.stored.pop(size), report)
        for number, kept_root in self.kept.pop(size, []):
            if kept_root != root:
                report.problems.append(
                    f"the entries up to {size} do not give the root of kept checkpoint {number} "
                    f"(size {size}): the history was rewritten"
                )

    def report_truncation(self, report: LedgerReport) -> None:
        for size in sorted(self.stored):
            report.problems.append(
                f"checkpoint of size {size} is beyond the entries: the log was truncated"
            )
        for size in sorted(self.kept):
            for number, _ in self.kept[size]:
                report.problems.append(
                    f"kept checkpoint {number} of size {size} is beyond the entries: "
                    "the log was truncated"
                )


def _skip(session: Session, seq: int, siblings: dict[int, bytes]) -> int:
    # A deleted entry: continue with its stored leaf hash so later entries are still checked.
    nodes.append(seq, _stored(session)(0, seq), siblings)
    return seq + 1


def _chunks(session: Session) -> Iterator[list[LedgerEntry]]:
    last = -1
    while True:
        chunk = list(
            session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.seq > last)
                .order_by(LedgerEntry.seq)
                .limit(VERIFY_CHUNK)
            )
        )
        if not chunk:
            return
        yield chunk
        last = chunk[-1].seq
        session.expunge_all()


def _check_columns(entry: LedgerEntry, report: LedgerReport) -> None:
    try:
        event = AccessEvent.decode(entry.event)
    except (ValueError, TypeError, KeyError):
        report.problems.append(f"entry {entry.seq} cannot be decoded: modified")
        return
    copies = {
        "at": entry.at,
        "tag": entry.tag,
        "actor": entry.actor,
        "tenant": entry.tenant,
        "beneficiary": entry.beneficiary,
    }
    for name, value in copies.items():
        if getattr(event, name) != value:
            report.problems.append(
                f"entry {entry.seq}: column {name} differs from the event it records: modified"
            )


def _compare_nodes(
    session: Session, recomputed: dict[tuple[int, int], bytes], report: LedgerReport
) -> None:
    by_level: dict[int, list[int]] = {}
    for level, index in recomputed:
        by_level.setdefault(level, []).append(index)
    for level, indexes in by_level.items():
        stored = {
            n.index: n.hash
            for n in session.scalars(
                select(LedgerNode).where(
                    LedgerNode.level == level, LedgerNode.index.between(min(indexes), max(indexes))
                )
            )
        }
        for index in sorted(indexes):
            if stored.get(index) != recomputed[(level, index)]:
                what = f"entry {index}" if level == 0 else f"tree node ({level}, {index})"
                report.problems.append(f"{what} does not match the stored tree: modified")


def _checked_checkpoints(
    session: Session, origin: str, key: Ed25519PublicKey, report: LedgerReport
) -> dict[int, bytes]:
    roots = {}
    for row in session.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.size)):
        try:
            checkpoint = open_checkpoint(row.note, origin, key)
        except (VerificationError, InvalidInput):
            report.problems.append(f"checkpoint of size {row.size}: its signature does not verify")
            continue
        if (checkpoint.size, checkpoint.root) != (row.size, row.root):
            report.problems.append(
                f"checkpoint of size {row.size}: its columns differ from its signed note"
            )
        roots[checkpoint.size] = checkpoint.root
        report.checkpoints += 1
    roots.pop(0, None)
    return roots


def _kept_checkpoints(
    notes: Sequence[str], origin: str, key: Ed25519PublicKey, report: LedgerReport
) -> dict[int, list[tuple[int, bytes]]]:
    """The roots of the notes kept outside, by size; a note the platform key did not sign for
    this log is refused (it proves nothing, either way)."""
    kept: dict[int, list[tuple[int, bytes]]] = {}
    for number, note in enumerate(notes, start=1):
        try:
            checkpoint = open_log_checkpoint(note, origin, key)
        except (VerificationError, InvalidInput):
            report.problems.append(
                f"kept checkpoint {number}: not signed by the platform key for {origin}: refused"
            )
            continue
        report.kept += 1
        kept.setdefault(checkpoint.size, []).append((number, checkpoint.root))
    return kept


def _check_root(size: int, root: bytes, signed: bytes, report: LedgerReport) -> None:
    if root != signed:
        report.problems.append(
            f"the entries up to {size} do not give the root signed at size {size}: "
            "entries before it were altered"
        )
