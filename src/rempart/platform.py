"""The running platform: settings, database and keyring, built once by the app or a CLI command."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from rempart.crypto.keyring import PLATFORM_SCOPE, Keyring
from rempart.crypto.master import FileKeyProvider
from rempart.crypto.models import DataKey
from rempart.db import make_engine, make_sessionmaker, migrate, transaction
from rempart.errors import ConfigurationError
from rempart.integrity import journal
from rempart.ledger.services import tree_size
from rempart.settings import Settings


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keyring: Keyring

    def close(self) -> None:
        self.engine.dispose()


def open_platform(settings: Settings) -> Platform:
    """Connect to the database and load the master key (which must exist: see ``rempart init``)."""
    settings.check_production()
    engine = make_engine(settings.resolved_database_url)
    keyring = Keyring(FileKeyProvider(settings.resolved_master_key_file))
    sessions = make_sessionmaker(engine, **{journal.KEYRING: keyring})
    journal.install(sessions)
    return Platform(settings, engine, sessions, keyring)


def initialise(settings: Settings) -> tuple[Platform, bool]:
    """Create the home folder, the master key (if none), the schema and the platform's keys.

    Idempotent. Returns the platform and whether a new master key file was written.
    """
    settings.check_production()
    settings.home.mkdir(parents=True, exist_ok=True)
    key_file = settings.resolved_master_key_file
    created = False
    if not key_file.exists():
        if settings.env == "production":
            raise ConfigurationError(
                f"master key file {key_file} does not exist; in production the operator "
                "provisions it (see docs/keys.md), it is never generated beside the data"
            )
        FileKeyProvider.create(key_file)
        created = True
    platform = open_platform(settings)
    migrate(platform.engine)
    with transaction(platform.sessions) as session:
        if (
            session.scalar(select(DataKey.id).where(DataKey.scope == PLATFORM_SCOPE).limit(1))
            is None
        ):
            platform.keyring.create_scope(session, PLATFORM_SCOPE)
        # Created now: row MACs are computed during flushes, where no key can be added.
        platform.keyring.platform_secret(session, journal.INTEGRITY)
        tree_size(session)  # creates the ledger's head row before workers race to append
    return platform, created
