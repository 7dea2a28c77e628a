"""Fixtures shared by the whole suite: settings, and a fresh platform on every configured database.

Storage tests run on SQLite, and on PostgreSQL too when REMPART_TEST_POSTGRES_URL is set. Under CI
(CI=true) the variable is required: a missing database fails the run instead of skipping tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from rempart.platform import Platform, initialise
from rempart.settings import Settings

POSTGRES_URL = os.environ.get("REMPART_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("REMPART_TEST_REDIS_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI requires REMPART_TEST_POSTGRES_URL: storage tests must run on PostgreSQL"
        )


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rempart.sqlite3'}"
        return
    assert POSTGRES_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        env="test",
        home=tmp_path / "home",
        database_url=database_url,
        import_batch_size=50,
        # argon2id at its lowest cost: the suite checks behaviour, not resistance to cracking.
        argon2_time_cost=1,
        argon2_memory_kib=64,
    )


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """An initialised platform (schema, master key, platform keys) on a fresh database."""
    opened, _ = initialise(settings)
    yield opened
    opened.close()
