"""Which registry columns are sealed under which scope, and re-sealing them under a new key.

Used by a data key rotation, and by any writer that finds, just before it commits, that a
rotation started while it was writing: it re-seals what it wrote with the keys it holds.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rempart.crypto.fields import FieldCipher
from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.db import table_of
from rempart.integrity import journal
from rempart.registry.models import Beneficiary, Member, Professional

# Sealed columns of each table; the sealed field's name is the column's without "_enc".
TENANT_SEALED: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (Member, ("member_number_enc",)),
    (Beneficiary, ("identity_enc",)),
)


def platform_sealed() -> tuple[tuple[Any, tuple[str, ...]], ...]:
    """Every column sealed under the platform's key, whichever capability owns it: a rotation
    that left one behind would make it unreadable once the previous key is dropped (accounts'
    addresses and TOTP secrets, bank-details changes and the letters that confirm them)."""
    # Imported here: the registry sits below the capabilities whose tables it re-seals.
    from rempart.identity.models import User
    from rempart.payments.models import BankChange, OutgoingMessage

    return (
        (Professional, ("iban_enc",)),
        (User, ("email_enc", "totp_secret_enc")),
        (BankChange, ("iban_enc",)),
        (OutgoingMessage, ("body_enc",)),
    )


def sealed_tables(scope: str) -> tuple[tuple[Any, tuple[str, ...]], ...]:
    return platform_sealed() if scope == PLATFORM_SCOPE else TENANT_SEALED


def _stale(model: Any, owner: uuid.UUID | None, version: int) -> Any:
    query = select(model).where(model.key_version != version)
    return query if owner is None else query.where(model.tenant_id == owner)


def _owner(scope: str) -> uuid.UUID | None:
    return None if scope == PLATFORM_SCOPE else uuid.UUID(scope.removeprefix("tenant:"))


def count_stale(session: Session, scope: str, version: int) -> int:
    owner = _owner(scope)
    return sum(
        session.scalar(select(func.count()).select_from(_stale(m, owner, version).subquery())) or 0
        for m, _ in sealed_tables(scope)
    )


def reseal_batch(session: Session, scope: str, cipher: FieldCipher, limit: int) -> int:
    """Re-seal up to ``limit`` rows sealed under another version than ``cipher``'s active one."""
    owner, version, done = _owner(scope), cipher.active_version, 0
    for model, columns in sealed_tables(scope):
        rows = session.scalars(_stale(model, owner, version).limit(limit - done)).all()
        if not rows:
            continue
        changes = []
        for row in rows:
            values: dict[str, Any] = {"id": row.id, "key_version": version}
            for column in columns:
                sealed, name = getattr(row, column), column.removesuffix("_enc")
                values[column] = (
                    None
                    if sealed is None
                    else cipher.seal(
                        model.__tablename__,
                        name,
                        row.id.hex,
                        cipher.open(model.__tablename__, name, row.id.hex, sealed),
                    )
                )
            changes.append(values)
        journal.update_rows(session, table_of(model), changes)
        session.expire_all()
        done += len(rows)
        if done >= limit:
            break
    return done
