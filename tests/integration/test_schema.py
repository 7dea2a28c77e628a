"""The schema the migrations build is the one the models declare, and it enforces its rules."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from rempart.db import Base, table_of
from rempart.identity.models import User
from rempart.platform import Platform
from rempart.registry.models import Tenant
from tests.support import AMC, add_insurer


def test_migrations_build_exactly_the_models_schema(platform: Platform) -> None:
    with platform.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize(
    ("role", "bound_to"),
    [("amc", "professional"), ("professional", "tenant"), ("operator", "tenant"), ("amc", None)],
)
def test_an_account_bound_to_the_wrong_kind_of_owner_is_refused_by_the_database(
    platform: Platform, role: str, bound_to: str | None
) -> None:
    add_insurer(platform)
    with platform.sessions() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.amc_number == AMC))
    row = {
        "id": uuid.uuid4(),
        "email_index": b"i" * 16,
        "email_enc": b"sealed",
        "role": role,
        "tenant_id": tenant_id if bound_to == "tenant" else None,
        "professional_id": None,
        "status": "active",
        "key_version": 1,
    }
    with pytest.raises(IntegrityError), platform.engine.begin() as connection:
        connection.execute(insert(table_of(User)), [row])
