"""Every write to a business table goes through here: its MAC is set, the MAC it replaces is
checked first, and the write is journalled. At commit, the journal's blocks are written and
their digests appended to the ledger, in the same transaction as the rows: the ledger's signed
checkpoints then commit every table's set of rows too.

ORM writes are handled by session events, installed on the platform's sessions. Bulk writes use
``insert_rows``, ``update_rows``, ``update_where`` and ``delete_where``; any other bulk statement
on a business table is refused, so that no write path can forget its MAC.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    delete,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, sessionmaker
from sqlalchemy.orm.base import NO_VALUE

from rempart.db import Protected, table_of, utcnow
from rempart.errors import ConfigurationError, IntegrityFailure
from rempart.integrity import rowmac
from rempart.integrity.models import JournalBlock
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events

INTEGRITY = "integrity"  # the platform secret that keys row MACs
KEYRING = "keyring"  # the session-info entry that holds the platform's keyring
BLOCK_ENTRIES = 10_000  # a journal block holds at most this many writes (330 kB)
_PENDING = "integrity.pending"
_BLOCKS = "integrity.blocks"
_CHUNK = 1_000


@dataclass(frozen=True)
class Spec:
    """What the MAC of a table's rows covers, and how to fill a column the caller left out."""

    name: str
    columns: tuple[str, ...]
    defaults: tuple[tuple[str, Callable[[], Any]], ...]


_specs: dict[str, Spec] = {}


def is_protected(table: Table) -> bool:
    return "row_mac" in table.c


def spec(table: Table) -> Spec:
    found = _specs.get(table.name)
    if found is None:
        columns = tuple(sorted(c.name for c in table.columns if c.name != "row_mac"))
        defaults: list[tuple[str, Callable[[], Any]]] = []
        for column in table.columns:
            if column.name == "row_mac":
                continue
            default = column.default
            if default is not None and getattr(default, "is_callable", False):
                # SQLAlchemy wraps a default function into one taking the execution context.
                defaults.append((column.name, partial(default.arg, None)))  # type: ignore[attr-defined]
            elif default is not None and getattr(default, "is_scalar", False):
                defaults.append((column.name, partial(_same, default.arg)))  # type: ignore[attr-defined]
            elif column.nullable:
                defaults.append((column.name, partial(_same, None)))
            # else: the caller must give it (a server default alone would escape the MAC)
        found = _specs[table.name] = Spec(table.name, columns, tuple(defaults))
    return found


def _same(value: Any) -> Any:
    return value


def install(sessions: sessionmaker[Session]) -> None:
    """Set the MAC of every ORM write, refuse unsealed bulk writes, journal at commit."""
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "do_orm_execute", _refuse_bare_writes)
    event.listen(sessions, "before_commit", _before_commit)
    event.listen(sessions, "after_rollback", _forget)


def key(session: Session) -> bytes:
    keyring = session.info.get(KEYRING)
    if keyring is None:
        raise ConfigurationError("business tables are written with the platform's sessions only")
    secret: bytes = keyring.platform_secret(session, INTEGRITY)
    return secret


def mac_of(session: Session, table: Table, row: Mapping[str, Any]) -> bytes:
    s = spec(table)
    return rowmac.row_mac(key(session), s.name, s.columns, row)


def _check(session: Session, table: Table, row: Mapping[str, Any]) -> None:
    stored = row.get("row_mac")
    if stored is None or not hmac.compare_digest(mac_of(session, table, row), stored):
        raise IntegrityFailure(
            f"{table.name} row {row['id']} was altered outside the application: "
            "its integrity MAC does not match its columns"
        )


def check_row(session: Session, obj: Protected) -> None:
    """Refuse to act on a loaded row whose columns no longer match its MAC."""
    table = table_of(obj)  # type: ignore[arg-type]
    _check(session, table, {c.name: getattr(obj, c.key) for c in table.columns})


# ORM writes ----------------------------------------------------------------------------------


def _values(obj: Any, table: Table) -> dict[str, Any]:
    return {c.name: getattr(obj, c.key) for c in table.columns}


def _before_flush(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    for obj in list(session.new):
        if isinstance(obj, Protected):
            table = table_of(obj)  # type: ignore[arg-type]
            for name, default in spec(table).defaults:
                if getattr(obj, name) is None:
                    setattr(obj, name, default())
            obj.row_mac = mac_of(session, table, _values(obj, table))
            _journal(session, table.name, rowmac.INSERT, obj.id, obj.row_mac)  # type: ignore[attr-defined]
    for obj in list(session.dirty):
        if isinstance(obj, Protected) and session.is_modified(obj):
            table = table_of(obj)  # type: ignore[arg-type]
            _check(session, table, _committed(session, obj, table))
            obj.row_mac = mac_of(session, table, _values(obj, table))
            _journal(session, table.name, rowmac.UPDATE, obj.id, obj.row_mac)  # type: ignore[attr-defined]
    for obj in list(session.deleted):
        if isinstance(obj, Protected):
            table = table_of(obj)  # type: ignore[arg-type]
            _journal(session, table.name, rowmac.DELETE, obj.id, None)  # type: ignore[attr-defined]


def _committed(session: Session, obj: Any, table: Table) -> dict[str, Any]:
    """The row as it was loaded, before this transaction's changes to the object."""
    before = inspect(obj).committed_state
    if any(before.get(c.key) is NO_VALUE for c in table.columns):  # never loaded: read it
        found = session.connection().execute(select(table).where(table.c.id == obj.id))
        return dict(found.mappings().one())
    return {c.name: before.get(c.key, getattr(obj, c.key)) for c in table.columns}


def _refuse_bare_writes(state: ORMExecuteState) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(statement, "table", None)
        if isinstance(table, Table) and is_protected(table):
            raise RuntimeError(
                f"{table.name} is a business table: write it through rempart.integrity.journal"
            )


# Bulk writes ---------------------------------------------------------------------------------


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (dicts keyed by column name; left-out columns take their defaults)."""
    if not rows:
        return
    s, secret = spec(table), key(session)
    for row in rows:
        for name, default in s.defaults:
            if name not in row:
                row[name] = default()
        row["row_mac"] = rowmac.row_mac(secret, s.name, s.columns, row)
        _journal(session, s.name, rowmac.INSERT, row["id"], row["row_mac"])
    session.connection().execute(insert(table), list(rows))
    _spill(session)


def update_rows(session: Session, table: Table, changes: Sequence[Mapping[str, Any]]) -> int:
    """Apply ``changes`` (each: the row's ``id`` and its new values) after checking each row's
    current MAC; returns how many rows were found."""
    s, secret, done = spec(table), key(session), 0
    connection = session.connection()
    for start in range(0, len(changes), _CHUNK):
        chunk = changes[start : start + _CHUNK]
        current = {
            row["id"]: dict(row)
            for row in connection.execute(
                select(table).where(table.c.id.in_([c["id"] for c in chunk])).with_for_update()
            ).mappings()
        }
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in chunk:
            row = current.get(change["id"])
            if row is None:
                continue
            _check(session, table, row)
            row.update(change)
            row["row_mac"] = rowmac.row_mac(secret, s.name, s.columns, row)
            _journal(session, s.name, rowmac.UPDATE, row["id"], row["row_mac"])
            params = {k: v for k, v in change.items() if k != "id"}
            params |= {"row_mac": row["row_mac"], "_id": row["id"]}
            by_shape.setdefault(tuple(sorted(params)), []).append(params)
            done += 1
        statement = update(table).where(table.c.id == bindparam("_id"))
        for params_list in by_shape.values():
            connection.execute(statement, params_list)
    _spill(session)
    return done


def update_where(session: Session, table: Table, where: ColumnElement[bool], **values: Any) -> int:
    """Set ``values`` on every row matching ``where`` (each row's MAC checked, then renewed)."""
    ids = session.connection().execute(select(table.c.id).where(where)).scalars().all()
    return update_rows(session, table, [{"id": row_id, **values} for row_id in ids])


def delete_where(session: Session, table: Table, where: ColumnElement[bool]) -> int:
    connection = session.connection()
    ids = connection.execute(select(table.c.id).where(where)).scalars().all()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        connection.execute(delete(table).where(table.c.id.in_(chunk)))
        for row_id in chunk:
            _journal(session, table.name, rowmac.DELETE, row_id, None)
    _spill(session)
    return len(ids)


# The journal ---------------------------------------------------------------------------------


def _journal(session: Session, table: str, op: bytes, row_id: uuid.UUID, mac: bytes | None) -> None:
    pending: dict[str, bytearray] = session.info.setdefault(_PENDING, {})
    pending.setdefault(table, bytearray()).extend(rowmac.entry(op, row_id, mac))


def _spill(session: Session) -> None:
    """Write the blocks that are full: a large import keeps a bounded journal in memory."""
    pending: dict[str, bytearray] = session.info.get(_PENDING, {})
    for table, buffer in pending.items():
        if len(buffer) >= BLOCK_ENTRIES * rowmac.ENTRY_BYTES:
            _write_block(session, table, bytes(buffer))
            buffer.clear()


def _write_block(session: Session, table: str, blob: bytes) -> None:
    seq = (
        session.connection()
        .execute(
            insert(table_of(JournalBlock)).returning(table_of(JournalBlock).c.seq),
            {"table_name": table, "entries": blob, "written_at": utcnow()},
        )
        .scalar_one()
    )
    blocks: list[str] = session.info.setdefault(_BLOCKS, [])
    blocks.append(f"{seq}:{table}:{rowmac.journal_digest(seq, table, blob)}")


def _before_commit(session: Session) -> None:
    session.flush()
    pending: dict[str, bytearray] = session.info.pop(_PENDING, {})
    for table, buffer in pending.items():
        if buffer:
            _write_block(session, table, bytes(buffer))
    blocks: list[str] = session.info.pop(_BLOCKS, [])
    if blocks:
        append_events(
            session,
            [
                AccessEvent(
                    at=utcnow(),
                    tag=Tag.ROWS_WRITTEN,
                    actor="application",
                    outcome="committed",
                    purpose="integrity journal",
                    fields=tuple(blocks),
                )
            ],
        )


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_BLOCKS, None)
