"""The ledger verified over a time window, and the window exported from the verified leaves.

RFC 9162 hashing, C2SP signed checkpoints. Every entry from the last one recorded before the
window to the first one recorded after it is decoded, its query columns compared with its event,
and its leaf hash recomputed and compared with the stored tree. The complete subtrees these
leaves make are hashed again, and the roots signed at sizes that cover the window (the first
stored checkpoint that does, the latest, and every checkpoint an insurer kept) are computed from
them and compared with the signed roots: the events exported are exactly the ones those
signatures commit to. What is outside the window is taken from the stored tree, so the work is
proportional to the window, not to the log.

The range is found with the entries' own times, which follow the sequence to within
``ORDER_MARGIN`` (an event is timed when it happens and committed within seconds by the
recorder). The two bounding entries are verified with the rest: a time column altered to move an
event out of the window differs from its event, and is named.

The verified events of the window are written in the same pass, in the layout of ``rempart
ledger export`` (``day=YYYY-MM-DD/part-<seq>.parquet``, the same columns, each row with its leaf
hash), for DuckDB.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from rempart.db import table_of, transaction
from rempart.errors import InvalidInput, VerificationError
from rempart.ledger import merkle, nodes
from rempart.ledger.checkpoint import open_checkpoint, open_log_checkpoint
from rempart.ledger.events import AccessEvent
from rempart.ledger.export import SCHEMA
from rempart.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerNode
from rempart.ledger.services import make_checkpoint, tree_size
from rempart.platform import Platform

ORDER_MARGIN = timedelta(minutes=10)  # how far an event's time may lag its sequence number
CHUNK = 10_000
ROWS_PER_FILE = 200_000
# Uncompressed: pseudonyms and leaf hashes are random, Snappy saves a fifth of the space and costs
# the selection a third of its CPU (python -m bench.scoping); the copy is read more than kept.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "none"}


@dataclass(frozen=True)
class CitedCheckpoint:
    size: int
    root: str  # base64, as in the note
    note: str


@dataclass
class WindowReport:
    """What the verification of the window found, and the checkpoint it cites."""

    since: datetime
    until: datetime
    tree_size: int = 0
    first_seq: int | None = None  # the entries verified: [first_seq, last_seq]
    last_seq: int | None = None
    entries: int = 0
    events: int = 0  # of which in the window: exported
    files: int = 0
    checkpoint: CitedCheckpoint | None = None
    signed_now: bool = False  # no checkpoint covered the window: scoping signed one
    roots: list[str] = field(default_factory=list)  # the signed roots recomputed and compared
    kept: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def describe(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "tree_size": self.tree_size,
            "entries_verified": {"first": self.first_seq, "last": self.last_seq},
            "entries_checked": self.entries,
            "events_in_window": self.events,
            "checkpoint": None
            if self.checkpoint is None
            else {
                "size": self.checkpoint.size,
                "root": self.checkpoint.root,
                "note": self.checkpoint.note,
            },
            "checkpoint_signed_by_scope": self.signed_now,
            "roots_compared": self.roots,
            "kept_checkpoints": self.kept,
            "problems": self.problems,
        }


def verify_window(
    platform: Platform,
    since: datetime,
    until: datetime,
    events_dir: Path,
    external: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> WindowReport:
    """Verify the ledger over [since, until) and export the window's events to ``events_dir``."""
    report = WindowReport(since, until)
    origin = platform.settings.ledger_origin
    with transaction(platform.sessions) as session:
        first, last = _bounds(session, since, until, report)
        latest = _latest_size(session)
    if last is not None and (latest is None or latest <= last):
        make_checkpoint(platform.sessions, platform.keyring, origin)
        report.signed_now = True
    writer = _EventWriter(events_dir)
    with transaction(platform.sessions) as session:
        report.tree_size = size = tree_size(session)
        key = platform.keyring.signing_key(session).public_key()
        if first is None or last is None:
            first, last = size, size - 1  # an empty log: nothing to verify
        report.first_seq, report.last_seq = (first, last) if first <= last else (None, None)
        end = min(last + 1, size)
        subtrees = _Subtrees(first, end)
        stored = _StoredTree(session)
        expected = first
        for chunk in _entries(session, first, last):
            leaves = _stored_leaves(session, expected, chunk[-1].seq)
            for row in chunk:
                report.entries += 1
                if row.seq >= size:
                    report.problems.append(
                        f"entry {row.seq} lies beyond the head ({size}): inserted"
                    )
                    continue
                while expected < row.seq:
                    report.problems.append(f"entry {expected} is missing: deleted")
                    subtrees.add(leaves.get(expected))
                    expected += 1
                event = _checked(row, report)
                leaf = merkle.leaf_hash(row.event)
                if leaves.get(row.seq) != leaf:
                    report.problems.append(
                        f"entry {row.seq} does not match the stored tree: modified"
                    )
                subtrees.add(leaf)
                expected += 1
                if event is not None and since <= event.at < until:
                    writer.add(row.seq, event, leaf)
                    report.events += 1
            if progress:
                progress(expected - first, max(last - first + 1, 0))
        if expected < end:
            leaves = _stored_leaves(session, expected, end - 1)
            while expected < end:
                report.problems.append(f"entry {expected} is missing: deleted")
                subtrees.add(leaves.get(expected))
                expected += 1
        _check_roots(session, stored, subtrees, size, end, origin, key, external, report)
    report.files = writer.close()
    return report


def _bounds(
    session: Session, since: datetime, until: datetime, report: WindowReport
) -> tuple[int | None, int | None]:
    """The entries to verify: from the last one recorded before the window (less the margin) to
    the first one recorded after it; both found through the time index."""
    entries = table_of(LedgerEntry)
    before = session.execute(
        select(entries.c.seq)
        .where(entries.c.at < since - ORDER_MARGIN)
        .order_by(entries.c.at.desc(), entries.c.seq.desc())
        .limit(1)
    ).scalar()
    after = session.execute(
        select(entries.c.seq)
        .where(entries.c.at >= until + ORDER_MARGIN)
        .order_by(entries.c.at, entries.c.seq)
        .limit(1)
    ).scalar()
    if before is not None and after is not None and before > after:
        report.problems.append(
            f"entries {before} and {after} are out of time order by more than {ORDER_MARGIN}: "
            "the times were altered"
        )
        before, after = after, before
    size = tree_size(session)
    highest = session.execute(
        select(entries.c.seq).order_by(entries.c.seq.desc()).limit(1)
    ).scalar()
    if highest is None and size == 0:
        return None, None
    last = after if after is not None else max(size - 1, -1 if highest is None else highest)
    return (before if before is not None else 0), last


def _latest_size(session: Session) -> int | None:
    return session.execute(
        select(table_of(LedgerCheckpoint).c.size)
        .order_by(table_of(LedgerCheckpoint).c.size.desc())
        .limit(1)
    ).scalar()


def _entries(session: Session, first: int, last: int) -> Iterator[Sequence[Row[Any]]]:
    entries = table_of(LedgerEntry)
    after = first - 1
    while True:
        chunk = session.execute(
            select(entries)
            .where(entries.c.seq > after, entries.c.seq <= last)
            .order_by(entries.c.seq)
            .limit(CHUNK)
        ).all()
        if not chunk:
            return
        yield chunk
        after = chunk[-1].seq


def _stored_leaves(session: Session, first: int, last: int) -> dict[int, bytes]:
    stored = table_of(LedgerNode)
    rows = session.execute(
        select(stored.c.index, stored.c.hash).where(
            stored.c.level == 0, stored.c.index.between(first, last)
        )
    )
    return {row[0]: row[1] for row in rows}  # (a result is not a mapping)


def _checked(row: Row[Any], report: WindowReport) -> AccessEvent | None:
    """The entry's event, its query columns compared with it (messages as ``ledger verify``)."""
    try:
        event = AccessEvent.decode(row.event)
    except (ValueError, TypeError, KeyError):
        report.problems.append(f"entry {row.seq} cannot be decoded: modified")
        return None
    for name in ("at", "tag", "actor", "tenant", "beneficiary"):
        if getattr(event, name) != getattr(row, name):
            report.problems.append(
                f"entry {row.seq}: column {name} differs from the event it records: modified"
            )
    return event


def tiles(start: int, end: int) -> list[tuple[int, int]]:
    """The largest complete subtrees (level, index) that tile the leaves [start, end)."""
    found, position = [], start
    while position < end:
        level = (end - position).bit_length() - 1
        if position:
            level = min(level, (position & -position).bit_length() - 1)
        found.append((level, position >> level))
        position += 1 << level
    return found


class _Subtrees:
    """The roots of the tiles of [start, end), computed leaf by leaf in O(log n) memory."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.tiles = tiles(start, end)
        self.roots: dict[tuple[int, int], bytes] = {}
        self.complete = True  # False when a leaf could not be had (deleted, with its node)
        self._tile = 0
        self._position = start
        self._siblings: dict[int, bytes] = {}

    def add(self, leaf: bytes | None) -> None:
        if leaf is None:
            self.complete = False
        if self._tile >= len(self.tiles):
            return
        level, index = self.tiles[self._tile]
        base = index << level
        if self.complete and leaf is not None:
            nodes.append(self._position - base, leaf, self._siblings)
        self._position += 1
        if self._position == base + (1 << level):
            if self.complete:
                self.roots[(level, index)] = self._siblings.pop(level)
            self._siblings.clear()
            self._tile += 1


class _StoredTree:
    """Stored subtree roots, looked up once each."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        if (level, index) not in self._cache:
            found = self._session.get(LedgerNode, (level, index))
            if found is None:
                raise VerificationError(f"expected tree node ({level}, {index}), got none")
            self._cache[(level, index)] = found.hash
        return self._cache[(level, index)]


def root_with(
    size: int,
    start: int,
    end: int,
    roots: dict[tuple[int, int], bytes],
    stored: Callable[[int, int], bytes],
) -> bytes:
    """The root of the tree of ``size`` leaves, with the subtrees inside [start, end) taken from
    ``roots`` (recomputed from the events) and the others from ``stored``."""

    def lookup(level: int, index: int) -> bytes:
        low = index << level
        high = low + (1 << level)
        if high <= start or low >= end:
            return stored(level, index)
        if (level, index) in roots:
            return roots[(level, index)]
        if level == 0:  # cannot happen: every leaf inside is under a tile
            raise VerificationError(f"expected the recomputed leaf {index}, got none")
        return merkle.node_hash(lookup(level - 1, 2 * index), lookup(level - 1, 2 * index + 1))

    return merkle.EMPTY_ROOT if size == 0 else nodes.subtree_hash(0, size, lookup)


def _check_roots(
    session: Session,
    stored: _StoredTree,
    subtrees: _Subtrees,
    size: int,
    end: int,
    origin: str,
    key: Ed25519PublicKey,
    external: Sequence[str],
    report: WindowReport,
) -> None:
    """Compare the roots signed at sizes that cover the window with the recomputed ones."""
    signed: list[tuple[str, int, bytes]] = []
    covering = []
    for row in session.scalars(
        select(LedgerCheckpoint).where(LedgerCheckpoint.size >= end).order_by(LedgerCheckpoint.size)
    ):
        covering.append(row)
    chosen = {id(c): c for c in (covering[:1] + covering[-1:])}.values()
    latest: CitedCheckpoint | None = None
    for row in chosen:
        try:
            checkpoint = open_checkpoint(row.note, origin, key)
        except (VerificationError, InvalidInput):
            report.problems.append(f"checkpoint of size {row.size}: its signature does not verify")
            continue
        if (checkpoint.size, checkpoint.root) != (row.size, row.root):
            report.problems.append(
                f"checkpoint of size {row.size}: its columns differ from its signed note"
            )
            continue
        if checkpoint.size > size:
            report.problems.append(
                f"checkpoint of size {row.size} is beyond the entries: the log was truncated"
            )
            continue
        signed.append((f"checkpoint of size {row.size}", row.size, checkpoint.root))
        latest = CitedCheckpoint(
            row.size, base64.b64encode(checkpoint.root).decode(), row.note.rstrip("\n") + "\n"
        )
    report.checkpoint = latest
    for number, note in enumerate(external, start=1):
        try:
            kept = open_log_checkpoint(note, origin, key)
        except (VerificationError, InvalidInput):
            report.problems.append(
                f"kept checkpoint {number}: not signed by the platform key for {origin}: refused"
            )
            continue
        report.kept += 1
        if kept.size > size:
            report.problems.append(
                f"kept checkpoint {number} of size {kept.size} is beyond the entries: "
                "the log was truncated"
            )
        elif kept.size >= end:
            signed.append((f"kept checkpoint {number}", kept.size, kept.root))
    if end > 0 and not signed:
        report.problems.append(f"no valid signed checkpoint covers the window (entries < {end})")
    if not subtrees.complete:
        report.problems.append("entries are missing with their leaves: no root can be recomputed")
        return
    for name, at_size, root in signed:
        try:
            recomputed = root_with(at_size, subtrees.start, end, subtrees.roots, stored)
        except VerificationError:
            report.problems.append(f"the stored tree lacks nodes needed for {name}: deleted")
            continue
        if recomputed != root:
            report.problems.append(
                f"the window's entries do not give the root of {name}: the log was altered"
            )
        else:
            report.roots.append(f"{name} ({base64.b64encode(root).decode()})")


class _EventWriter:
    """Writes events as ``rempart ledger export`` does: day=YYYY-MM-DD/part-<seq>.parquet."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files = 0
        self._days: dict[str, list[tuple[int, AccessEvent, bytes]]] = {}

    def add(self, seq: int, event: AccessEvent, leaf: bytes) -> None:
        day = event.at.astimezone(UTC).date().isoformat()
        rows = self._days.setdefault(day, [])
        rows.append((seq, event, leaf))
        if len(rows) >= ROWS_PER_FILE:
            self._flush(day)

    def close(self) -> int:
        for day in list(self._days):
            self._flush(day)
        return self.files

    def _flush(self, day: str) -> None:
        rows = self._days.pop(day)
        if not rows:
            return
        columns: dict[str, list[Any]] = {"seq": [seq for seq, _, _ in rows]}
        for name in SCHEMA.names[1:-1]:
            columns[name] = [getattr(event, name) for _, event, _ in rows]
        columns["fields"] = [list(event.fields) for _, event, _ in rows]
        columns["leaf_hash"] = [leaf for _, _, leaf in rows]
        path = self.out / f"day={day}" / f"part-{rows[0][0]:012d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pq.write_table(pa.Table.from_pydict(columns, schema=SCHEMA), path, **PARQUET_OPTIONS)
        os.chmod(path, 0o600)  # pseudonyms and professionals' addresses: owner only
        self.files += 1
