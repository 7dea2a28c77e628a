"""Alembic environment: runs on the connection ``rempart.db.migrate`` hands it."""

from alembic import context

import rempart.claims.models
import rempart.crypto.models
import rempart.guard.models
import rempart.identity.models
import rempart.integrity.models
import rempart.ledger.models
import rempart.payments.models
import rempart.registry.models  # noqa: F401  (registers the tables)
from rempart.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
