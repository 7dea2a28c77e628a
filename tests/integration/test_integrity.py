"""Integrity of business rows, from the attacker's side: someone who can write to the database
(a stolen backup restored, a compromised DBA account) but holds no key.

Every attack is made with the database's own connection, outside the application, and must be
found and named by ``verify_integrity``; undone, the platform must be intact again.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.db import table_of, transaction
from rempart.errors import IntegrityFailure
from rempart.identity.clients import professional_id_of, register_client
from rempart.identity.models import User
from rempart.incidents.containment import freeze, unfreeze
from rempart.integrity import journal
from rempart.integrity.models import JournalBlock
from rempart.integrity.verify import protected_tables, verify_integrity
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.models import Beneficiary, RightsPeriod, Tenant
from rempart.settings import get_settings
from tests.support import (
    AMC,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_invoices,
    add_professionals,
    member_file,
    person,
    set_rows,
    sign_in,
)

PEOPLE = [person(n) for n in range(1, 7)]
EMAIL = "pharma@example.org"


@pytest.fixture
def world(platform: Platform) -> Platform:
    """Rows in every business table, written by the application's own paths."""
    add_insurer(platform)
    import_members(platform, AMC, io.BytesIO(member_file(PEOPLE)), ImportOptions())
    # A second import changes one person and drops another: updates, deletions, closures.
    changed = [PEOPLE[0].but(last_name="Changé"), *PEOPLE[1:5]]
    import_members(platform, AMC, io.BytesIO(member_file(changed)), ImportOptions())
    add_professionals(platform)
    add_account(platform, "professional", EMAIL, am_number=PHARMACIST_AM)
    key = Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    register_client(platform, professional_id_of(platform, PHARMACIST_AM), "Logiciel", pem, "cli")
    freeze(platform, "professional", PHARMACIST_AM, "test", "cli:alice")
    unfreeze(platform, "professional", PHARMACIST_AM, "cli:alice")
    add_invoices(platform)
    return platform


# The business tables the world below writes rows to, through the application.
FILLED = {
    "tenants",
    "plan_versions",
    "members",
    "beneficiaries",
    "rights_periods",
    "professionals",
    "users",
    "api_clients",
    "freezes",
    "member_imports",
    "invoices",
    "invoice_lines",
    "accumulator_bookings",
    "renewal_uses",
}


def problems(platform: Platform) -> list[str]:
    report = verify_integrity(platform)
    return report.ledger.problems + report.problems


def rows_of(platform: Platform, table: Table) -> list[dict[str, Any]]:
    with platform.engine.begin() as connection:
        return [dict(r) for r in connection.execute(select(table)).mappings()]


def restore(platform: Platform, table: Table, row: dict[str, Any]) -> None:
    """Put a row back exactly as it was (the attacker's undo)."""
    with platform.engine.begin() as connection:
        values = {k: v for k, v in row.items() if k != "id"}
        found = connection.execute(update(table).where(table.c.id == row["id"]).values(values))
        if not found.rowcount:
            connection.execute(insert(table), [row])


def test_every_business_table_is_covered_and_a_clean_platform_is_intact(world: Platform) -> None:
    names = {t.name for t in protected_tables()}
    assert names >= FILLED | {"webauthn_credentials"}
    report = verify_integrity(world)
    assert report.intact, report.problems
    counted = {t.name: t.rows for t in report.tables}
    for table in protected_tables():
        assert counted[table.name] == len(rows_of(world, table)), table.name
    assert all(counted[name] > 0 for name in FILLED)


def _changed(value: Any, others: list[Any]) -> Any:
    """Another plausible value of the same type (what a forger would write)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return (value[:-1] + ("x" if value[-1:] != "x" else "y")) if value else "x"
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:] if value else b"\x01"
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, date):
        return value + timedelta(days=1)
    if isinstance(value, uuid.UUID):  # a reference: point it at another existing row
        choices = [o for o in others if o is not None and o != value]
        return choices[0] if choices else None
    return None


def modifications(
    platform: Platform, seed: int, count: int
) -> Iterator[tuple[Table, dict[str, Any]]]:
    """Random single-column forgeries, each yielded with the row it replaces."""
    rng = random.Random(seed)
    tables = [t for t in protected_tables() if rows_of(platform, t)]
    made = 0
    while made < count:
        table = rng.choice(tables)
        rows = rows_of(platform, table)
        row = rng.choice(rows)
        column = rng.choice([c.name for c in table.columns if c.name not in ("id", "row_mac")])
        value = _changed(row[column], [r[column] for r in rows])
        if value is None:
            continue
        try:
            with platform.engine.begin() as connection:
                connection.execute(
                    update(table).where(table.c.id == row["id"]).values({column: value})
                )
        except IntegrityError:  # a constraint refused this forgery: try another
            continue
        made += 1
        yield table, row


def test_random_modifications_of_business_rows_are_each_named(world: Platform) -> None:
    for table, original in modifications(world, seed=20240129, count=25):
        found = problems(world)
        assert found == [
            f"{table.name} row {original['id']}: altered outside the application "
            "(its MAC does not match its columns)"
        ]
        restore(world, table, original)
    assert problems(world) == []


def test_deleted_rows_are_named(world: Platform) -> None:
    rng = random.Random(7)
    for table in protected_tables():
        rows = rows_of(world, table)
        if not rows:  # no authenticator in this world: test_webauthn plants one
            continue
        row = rng.choice(rows)
        try:
            with world.engine.begin() as connection:
                connection.execute(delete(table).where(table.c.id == row["id"]))
        except IntegrityError:  # still referenced: delete a row nothing points to instead
            continue
        assert problems(world) == [
            f"{table.name} row {row['id']}: deleted outside the application (the journal wrote it)"
        ]
        restore(world, table, row)
    assert problems(world) == []


def test_inserted_rows_are_named_even_with_a_copied_mac(world: Platform) -> None:
    periods = table_of(RightsPeriod)
    source = rows_of(world, periods)[0]
    forged = source | {"id": uuid.uuid4(), "start_date": date(2000, 1, 1)}
    with world.engine.begin() as connection:
        connection.execute(insert(periods), [forged])
    assert problems(world) == [
        f"rights_periods row {forged['id']}: altered outside the application "
        "(its MAC does not match its columns)"
    ]


def test_a_row_the_application_deleted_cannot_be_brought_back(world: Platform) -> None:
    """The second import replaced Changé's period: an old, validly MAC'd copy is refused."""
    periods = table_of(RightsPeriod)
    before = {r["id"]: r for r in rows_of(world, periods)}
    import_members(
        world,
        AMC,
        io.BytesIO(member_file([PEOPLE[0].but(last_name="Encore"), *PEOPLE[1:5]])),
        ImportOptions(),
    )
    now = {r["id"]: r for r in rows_of(world, periods)}
    (old,) = [r for i, r in before.items() if i not in now]
    (new,) = [r for i, r in now.items() if i not in before]
    with world.engine.begin() as connection:  # the new period swapped for the old
        connection.execute(delete(periods).where(periods.c.id == new["id"]))
        connection.execute(insert(periods), [old])
    assert set(problems(world)) == {
        f"rights_periods row {new['id']}: deleted outside the application (the journal wrote it)",
        f"rights_periods row {old['id']}: inserted outside the application "
        "(the journal never wrote it)",
    }


def test_an_earlier_version_put_back_is_named(world: Platform) -> None:
    """A restored old copy of a row has a valid MAC, but not the latest one."""
    users = table_of(User)
    (old,) = rows_of(world, users)
    set_rows(world, User, failed_logins=9)  # the application writes a newer version
    restore(world, users, old)
    assert problems(world) == [
        f"users row {old['id']}: an earlier version was put back "
        "(its MAC is not the latest written)"
    ]


def test_swapping_two_rows_columns_is_named_for_both(world: Platform) -> None:
    beneficiaries = table_of(Beneficiary)
    a, b = rows_of(world, beneficiaries)[:2]
    with world.engine.begin() as connection:  # each person's identity moved to the other's row
        for row, other in ((a, b), (b, a)):
            connection.execute(
                update(beneficiaries)
                .where(beneficiaries.c.id == row["id"])
                .values(identity_enc=other["identity_enc"])
            )
    found = problems(world)
    assert sorted(found) == sorted(
        f"beneficiaries row {r['id']}: altered outside the application "
        "(its MAC does not match its columns)"
        for r in (a, b)
    )


def test_the_journal_itself_cannot_be_rewritten(world: Platform) -> None:
    blocks = table_of(JournalBlock)
    with world.engine.begin() as connection:
        first = connection.execute(select(blocks).order_by(blocks.c.seq)).mappings().first()
    assert first is not None
    # A forger who deletes a row and its journal entry: the block no longer has its digest.
    with world.engine.begin() as connection:
        connection.execute(
            update(blocks).where(blocks.c.seq == first["seq"]).values(entries=first["entries"][33:])
        )
    found = problems(world)
    assert (
        f"journal block {first['seq']} ({first['table_name']}) differs from its digest in the "
        "ledger: altered outside the application"
    ) in found
    with world.engine.begin() as connection:
        connection.execute(delete(blocks).where(blocks.c.seq == first["seq"]))
    assert (
        f"journal block {first['seq']} ({first['table_name']}) is recorded in the ledger but "
        "missing: deleted outside the application"
    ) in problems(world)
    with world.engine.begin() as connection:
        connection.execute(insert(blocks), [dict(first) | {"seq": 999_999}])
    assert (
        f"journal block 999999 ({first['table_name']}) is not in the ledger: "
        "inserted outside the application"
    ) in problems(world)


def test_a_tampered_role_is_refused_at_once(world: Platform) -> None:
    """An attacker who makes their own account an operator's gets nothing from it."""
    client = TestClient(create_app(world.settings, world), raise_server_exceptions=False)
    with client:
        secret = add_account(world, "amc", "gestion@mutuelle.example", amc_number=AMC)
        headers = sign_in(client, world, "gestion@mutuelle.example", secret)
        assert client.get("/api/v1/auth/session", headers=headers).status_code == 200
        users = table_of(User)
        with world.engine.begin() as connection:
            connection.execute(
                update(users).where(users.c.role == "amc").values(role="operator", tenant_id=None)
            )
        answer = client.get("/api/v1/auth/session", headers=headers)
        assert answer.status_code == 500
        assert "operator" not in answer.text
        assert "users" not in answer.text


def test_the_application_refuses_to_write_over_a_tampered_row(world: Platform) -> None:
    users = table_of(User)
    with world.engine.begin() as connection:
        connection.execute(update(users).values(failed_logins=-1000))  # guesses without end
    with pytest.raises(IntegrityFailure, match=r"users row .* altered outside the application"):
        set_rows(world, User, failed_logins=1)


def test_bulk_writes_that_skip_the_mac_are_refused(world: Platform) -> None:
    with pytest.raises(RuntimeError, match="business table"), transaction(world.sessions) as s:
        s.execute(update(User).values(failed_logins=0))
    with transaction(world.sessions) as session:  # the journal's own way works
        assert journal.update_where(session, table_of(User), User.role == "professional") == 1


def test_the_verify_command_exits_non_zero_and_names_the_row(
    world: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMPART_HOME", str(world.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", world.settings.resolved_database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        ok = runner.invoke(cli_app, ["integrity", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "integrity intact" in ok.output
        tenants = table_of(Tenant)
        (tenant,) = rows_of(world, tenants)
        with world.engine.begin() as connection:
            connection.execute(update(tenants).values(name="Mutuelle pirate"))
        broken = runner.invoke(cli_app, ["integrity", "verify", "--json"])
        assert broken.exit_code == 1
        assert f"tenants row {tenant['id']}: altered" in broken.output
    finally:
        get_settings.cache_clear()
