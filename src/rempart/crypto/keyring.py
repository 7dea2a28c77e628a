"""The keyring: creates, unwraps, rotates and destroys the data keys of each scope.

Each scope (a tenant, or the platform) has data keys, by version, for AES-GCM, and one index key
for blind indexes. They are stored wrapped by the master key (see ``master``). A data key rotation
adds a version that every new write uses at once; readers keep every version they find until the
old one is dropped, so no request waits for a rotation.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.crypto.fields import BlindIndexer, FieldCipher
from rempart.crypto.master import KEY_BYTES, KeyProvider
from rempart.crypto.models import PURPOSE_LENGTH, DataKey
from rempart.errors import NotFound

PLATFORM_SCOPE = "platform"
DATA, INDEX, SIGN = "data", "index", "sign"


def _context(scope: str, purpose: str, version: int) -> bytes:
    return f"rempart/data-key|{scope}|{purpose}|{version}".encode()


class Keyring:
    """Unwrapped keys for the scopes this process uses, checked against the database."""

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider
        self._ciphers: dict[str, FieldCipher] = {}
        self._indexers: dict[str, BlindIndexer] = {}
        self._secrets: dict[str, bytes] = {}

    def create_scope(self, session: Session, scope: str) -> None:
        """Give a new scope its first data key and its index key."""
        for purpose in (DATA, INDEX):
            self._add(session, scope, purpose, 1)

    def _add(self, session: Session, scope: str, purpose: str, version: int) -> None:
        key = secrets.token_bytes(KEY_BYTES)
        wrapped = self.provider.wrap(key, _context(scope, purpose, version))
        session.add(DataKey(scope=scope, purpose=purpose, version=version, wrapped=wrapped))
        session.flush()

    def _rows(self, session: Session, scope: str, purpose: str) -> list[DataKey]:
        rows = session.scalars(
            select(DataKey).where(DataKey.scope == scope, DataKey.purpose == purpose)
        ).all()
        if not rows:
            raise NotFound(f"no {purpose} key for scope {scope} (never created, or shredded)")
        return list(rows)

    def active_data_version(self, session: Session, scope: str, lock: bool = False) -> int:
        query = select(DataKey.version).where(
            DataKey.scope == scope, DataKey.purpose == DATA, DataKey.state == "active"
        )
        # FOR SHARE (PostgreSQL): a rotation cannot retire this key until the caller commits.
        version = session.scalar(query.with_for_update(read=True) if lock else query)
        if version is None:
            raise NotFound(f"no data key for scope {scope} (never created, or shredded)")
        return version

    def cipher(self, session: Session, scope: str) -> FieldCipher:
        """The scope's cipher; reloaded when another process has rotated its data key."""
        cached = self._ciphers.get(scope)
        active = self.active_data_version(session, scope)
        if cached is not None and cached.active_version == active:
            return cached
        keys = {
            row.version: self.provider.unwrap(row.wrapped, _context(scope, DATA, row.version))
            for row in self._rows(session, scope, DATA)
        }
        cipher = self._ciphers[scope] = FieldCipher(scope, keys, active)
        return cipher

    def confirm_before_commit(self, session: Session, scope: str, used: FieldCipher) -> FieldCipher:
        """Hold the active key until commit; if a rotation began since ``used`` was loaded,
        return a cipher that opens both versions, with which the caller re-seals what it wrote.
        """
        if self.active_data_version(session, scope, lock=True) == used.active_version:
            return used
        return used.joined_with(self.cipher(session, scope))

    def indexer(self, session: Session, scope: str) -> BlindIndexer:
        cached = self._indexers.get(scope)
        if cached is not None:
            return cached
        (row,) = self._rows(session, scope, INDEX)
        key = self.provider.unwrap(row.wrapped, _context(scope, INDEX, row.version))
        indexer = self._indexers[scope] = BlindIndexer(key)
        return indexer

    def platform_secret(self, session: Session, purpose: str) -> bytes:
        """A 256-bit secret of the platform for one purpose, created on first use, kept wrapped."""
        secret = self._secrets.get(purpose)
        if secret is None:
            # The column's bound, checked here: SQLite would store a longer name, PostgreSQL not.
            if not 0 < len(purpose) <= PURPOSE_LENGTH:
                raise ValueError(f"a platform secret's name has 1 to {PURPOSE_LENGTH} characters")
            query = select(DataKey).where(
                DataKey.scope == PLATFORM_SCOPE, DataKey.purpose == purpose
            )
            row = session.scalar(query)
            if row is None:
                try:  # two first uses at once: one creates it, the other reads it
                    with session.begin_nested():
                        self._add(session, PLATFORM_SCOPE, purpose, 1)
                except IntegrityError:
                    pass
                row = session.scalar(query)
                assert row is not None
            secret = self.provider.unwrap(
                row.wrapped, _context(PLATFORM_SCOPE, purpose, row.version)
            )
            self._secrets[purpose] = secret
        return secret

    def signing_key(self, session: Session) -> Ed25519PrivateKey:
        """The platform's Ed25519 key for ledger checkpoints."""
        return Ed25519PrivateKey.from_private_bytes(self.platform_secret(session, SIGN))

    def forget(self, scope: str) -> None:
        self._ciphers.pop(scope, None)
        self._indexers.pop(scope, None)

    def start_data_rotation(self, session: Session, scope: str) -> int:
        """Add a data key version and make it the one every new write uses."""
        current = self.active_data_version(session, scope)
        session.execute(
            update(DataKey)
            .where(DataKey.scope == scope, DataKey.purpose == DATA)
            .values(state="previous")
        )
        self._add(session, scope, DATA, current + 1)
        self.forget(scope)
        return current + 1

    def drop_previous_data_keys(self, session: Session, scope: str) -> int:
        """Destroy the data keys no longer active (once nothing is sealed under them)."""
        result = session.execute(
            delete(DataKey).where(
                DataKey.scope == scope, DataKey.purpose == DATA, DataKey.state == "previous"
            )
        )
        self.forget(scope)
        return int(result.rowcount)  # type: ignore[attr-defined]

    def rewrap_all(self, session: Session) -> int:
        """Wrap every data key again under the provider's active master key."""
        count = 0
        for row in session.scalars(select(DataKey)):
            key = self.provider.unwrap(row.wrapped, _context(row.scope, row.purpose, row.version))
            row.wrapped = self.provider.wrap(key, _context(row.scope, row.purpose, row.version))
            count += 1
        session.flush()
        return count

    def shred(self, session: Session, scopes: Iterable[str]) -> int:
        """Destroy every key of these scopes: what they sealed can never be read again."""
        total = 0
        for scope in scopes:
            result = session.execute(delete(DataKey).where(DataKey.scope == scope))
            total += int(result.rowcount)  # type: ignore[attr-defined]
            self.forget(scope)
        return total
