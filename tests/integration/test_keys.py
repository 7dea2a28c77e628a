"""Keys end to end, on every configured database: per-tenant keys, rotations, shredding, isolation.

The attacker here holds the database (a dump, or write access to it) but not the master key file,
or holds an old copy of that file.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from rempart.crypto.fields import FieldCipher
from rempart.crypto.keyring import PLATFORM_SCOPE, Keyring, _context
from rempart.crypto.master import FileKeyProvider
from rempart.crypto.models import DataKey
from rempart.db import Base, table_of, transaction
from rempart.errors import Conflict, NotFound, VerificationError
from rempart.identifiers import luhn_complete, make_french_iban, make_nir
from rempart.identity.models import User
from rempart.identity.services import add_user
from rempart.platform import Platform, open_platform
from rempart.registry import services
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.models import Beneficiary, Member, Professional, Tenant
from rempart.settings import Settings
from tests.support import PASSWORD

AMC_A, AMC_B = "75000001", "13000002"
PLAN = json.dumps(
    {
        "code": "BASE",
        "name": "Base",
        "responsible": True,
        "valid_from": "2025-01-01",
        "valid_to": None,
        "guarantees": {"PHAR": {"br_total_pct": 100}},
    }
).encode()
MEMBER_HEADER = (
    "member_number",
    "nir",
    "last_name",
    "first_name",
    "birth_date",
    "birth_rank",
    "relationship",
    "plan_code",
    "start_date",
    "end_date",
    "suspended_domains",
)
PROFESSIONAL_HEADER = (
    "am_number",
    "rpps",
    "finess",
    "name",
    "profession",
    "optam",
    "iban",
    "bic",
    "networks",
)


@dataclass(frozen=True)
class Person:
    member_number: str
    nir: str | None
    last_name: str
    first_name: str
    birth_date: date
    birth_rank: int = 1
    relationship: str = "insured"


PEOPLE_A = (
    Person("A0001", make_nir(2, 1980, 5, "75", "056", 123), "Lefèvre", "Élodie", date(1980, 5, 14)),
    Person(
        "A0001",
        make_nir(1, 1978, 11, "69", "123", 45),
        "Lefèvre",
        "Hugo",
        date(1978, 11, 2),
        relationship="spouse",
    ),
    Person("A0001", None, "Lefèvre", "Zoé", date(2012, 3, 9), relationship="child"),
    Person("A0002", make_nir(2, 1991, 7, "2A", "004", 7), "Nguyễn", "Thị Mai", date(1991, 7, 30)),
)
PEOPLE_B = (
    Person("B0001", make_nir(1, 1965, 1, "13", "055", 311), "Ørsted", "Paul", date(1965, 1, 21)),
    Person("B0002", make_nir(2, 2001, 12, "33", "063", 9), "Dubois", "Anaïs", date(2001, 12, 1)),
)
LATECOMER = Person(
    "A0003", make_nir(1, 1999, 2, "59", "350", 88), "Kowalski", "Jan", date(1999, 2, 3)
)
IBAN = make_french_iban("30004", "00001", "00012345678")


# --- builders -----------------------------------------------------------------------------------


def csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def member_file(people: tuple[Person, ...] | list[Person]) -> bytes:
    return csv_bytes(
        MEMBER_HEADER,
        [
            [
                p.member_number,
                p.nir or "",
                p.last_name,
                p.first_name,
                p.birth_date.isoformat(),
                str(p.birth_rank),
                p.relationship,
                "BASE",
                "2025-01-01",
                "",
                "",
            ]
            for p in people
        ],
    )


def professional_file() -> bytes:
    return csv_bytes(
        PROFESSIONAL_HEADER,
        [
            [
                "751234567",
                luhn_complete("1000012345"),
                "",
                "Pharmacie du Rempart",
                "pharmacist",
                "false",
                IBAN,
                "BNPAFRPPXXX",
                "",
            ]
        ],
    )


def add_insurer(platform: Platform, amc: str, people: tuple[Person, ...]) -> None:
    services.add_tenant(platform, amc, f"Mutuelle {amc}")
    services.load_plan(platform, amc, PLAN)
    report = import_members(platform, amc, io.BytesIO(member_file(people)), ImportOptions())
    assert report.committed, report.errors
    assert report.inserted == len(people)


def tenant_of(session: Session, amc: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.amc_number == amc))
    assert tenant is not None
    return tenant


def scope_of(platform: Platform, amc: str) -> str:
    with transaction(platform.sessions) as session:
        return tenant_of(session, amc).scope


def identity(p: Person) -> tuple[str, str, str, date, int, str]:
    return (p.member_number, p.last_name, p.first_name, p.birth_date, p.birth_rank, p.relationship)


def assert_found_by_nir(platform: Platform, amc: str, people: tuple[Person, ...]) -> None:
    """Each person with a NIR is found by it, with the right member number, names and birth date."""
    for person in people:
        if person.nir is None:
            continue
        matches = services.find_by_nir(platform, amc, person.nir)
        assert [
            (m.member_number, m.last_name, m.first_name, m.birth_date, m.birth_rank, m.relationship)
            for m in matches
        ] == [identity(person)]


def sealed_columns(model: type[Base]) -> tuple[str, ...]:
    """The sealed columns of a table (``*_enc``), however the schema groups fields under them."""
    return tuple(c.name for c in table_of(model).columns if c.name.endswith("_enc"))


def open_everything(platform: Platform, amc: str) -> list[tuple[str, str]]:
    """Per beneficiary: its member number and every sealed field of its row, opened and joined."""
    with transaction(platform.sessions) as session:
        tenant = tenant_of(session, amc)
        cipher = platform.keyring.cipher(session, tenant.scope)
        numbers = {
            m.id: cipher.open("members", "member_number", m.id.hex, m.member_number_enc)
            for m in session.scalars(select(Member).where(Member.tenant_id == tenant.id))
        }
        opened = []
        for b in session.scalars(select(Beneficiary).where(Beneficiary.tenant_id == tenant.id)):
            fields = [
                cipher.open("beneficiaries", column.removesuffix("_enc"), b.id.hex, sealed)
                for column in sealed_columns(Beneficiary)
                if (sealed := getattr(b, column)) is not None
            ]
            opened.append((numbers[b.member_id], "\x1f".join(fields)))
        return opened


def assert_everything_opens(
    platform: Platform, amc: str, people: tuple[Person, ...] | list[Person]
) -> None:
    """Every sealed field of the tenant opens, and holds exactly these people (NIR-less too)."""
    remaining = open_everything(platform, amc)
    assert len(remaining) == len(people)
    for p in people:
        wanted = [p.last_name, p.first_name, p.birth_date.isoformat(), *([p.nir] if p.nir else [])]
        hit = [r for r in remaining if r[0] == p.member_number and all(w in r[1] for w in wanted)]
        assert len(hit) == 1, f"{p.first_name} {p.last_name} is not among the opened records"
        remaining.remove(hit[0])


def sealed_values(session: Session, tenant_id: uuid.UUID) -> list[tuple[str, str, str, bytes]]:
    """(table, column, row id, ciphertext) of every sealed field of a tenant."""
    rows: list[Member | Beneficiary] = [
        *session.scalars(select(Member).where(Member.tenant_id == tenant_id)),
        *session.scalars(select(Beneficiary).where(Beneficiary.tenant_id == tenant_id)),
    ]
    found = []
    for row in rows:
        for column in sealed_columns(type(row)):
            sealed = getattr(row, column)
            if sealed is not None:
                found.append((row.__tablename__, column.removesuffix("_enc"), row.id.hex, sealed))
    return found


def key_rows(session: Session, scope: str | None = None) -> list[DataKey]:
    query = select(DataKey).order_by(DataKey.scope, DataKey.purpose, DataKey.version)
    if scope is not None:
        query = query.where(DataKey.scope == scope)
    return list(session.scalars(query))


def unwrap(platform: Platform, row: DataKey) -> bytes:
    return platform.keyring.provider.unwrap(
        row.wrapped, _context(row.scope, row.purpose, row.version)
    )


@pytest.fixture
def second_process(settings: Settings) -> Iterator[Callable[[], Platform]]:
    """Opens other platforms on the same settings (another worker, the CLI), closed afterwards."""
    opened: list[Platform] = []

    def open_one() -> Platform:
        other = open_platform(settings)
        opened.append(other)
        return other

    yield open_one
    for other in opened:
        other.close()


# --- per-tenant keys ----------------------------------------------------------------------------


def test_a_new_tenant_gets_its_own_data_and_index_keys(platform: Platform) -> None:
    services.add_tenant(platform, AMC_A, "Mutuelle A")
    services.add_tenant(platform, AMC_B, "Mutuelle B")
    with transaction(platform.sessions) as session:
        for amc in (AMC_A, AMC_B):
            tenant = tenant_of(session, amc)
            assert tenant.scope == f"tenant:{tenant.id.hex}"
            rows = key_rows(session, tenant.scope)
            assert [(r.purpose, r.version, r.state) for r in rows] == [
                ("data", 1, "active"),
                ("index", 1, "active"),
            ]
        keys = [unwrap(platform, row) for row in key_rows(session)]
    # Platform (data, index, row integrity) and two tenants (data, index): seven keys, all 32
    # bytes, all distinct.
    assert len(keys) == 7
    assert all(len(k) == 32 for k in keys)
    assert len(set(keys)) == 7


def test_the_data_keys_table_holds_no_key_in_clear(platform: Platform) -> None:
    services.add_tenant(platform, AMC_A, "Mutuelle A")
    with transaction(platform.sessions) as session:
        keys = [unwrap(platform, row) for row in key_rows(session)]
        dump = session.execute(text("SELECT * FROM data_keys")).all()
    assert len(dump) == len(keys) == 5  # platform data, index, integrity; tenant data, index
    cells = [bytes(v) for row in dump for v in row if isinstance(v, bytes | memoryview)]
    assert cells  # the wrapped keys themselves are in the dump
    for key in keys:
        for cell in cells:
            assert cell != key
            assert key not in cell
            assert key[:16] not in cell
            assert key[16:] not in cell
        # Nor hex- or base64-encoded in a text column.
        text_cells = [str(v) for row in dump for v in row if isinstance(v, str)]
        assert not any(key.hex() in t for t in text_cells)


def test_a_wrapped_key_copied_onto_another_tenants_row_is_refused(platform: Platform) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    add_insurer(platform, AMC_B, PEOPLE_B)
    scope_a, scope_b = scope_of(platform, AMC_A), scope_of(platform, AMC_B)
    with transaction(platform.sessions) as session:
        (wrapped_a,) = session.scalars(
            select(DataKey.wrapped).where(DataKey.scope == scope_a, DataKey.purpose == "data")
        )
        session.execute(
            update(DataKey)
            .where(DataKey.scope == scope_b, DataKey.purpose == "data")
            .values(wrapped=wrapped_a)
        )
    platform.keyring.forget(scope_b)
    with pytest.raises(VerificationError):
        services.find_by_nir(platform, AMC_B, str(PEOPLE_B[0].nir))
    assert_found_by_nir(platform, AMC_A, PEOPLE_A)


# --- tenant isolation and moved ciphertexts -----------------------------------------------------


def test_a_ciphertext_of_one_tenant_copied_into_another_tenants_row_is_refused(
    platform: Platform,
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    add_insurer(platform, AMC_B, PEOPLE_B)
    with transaction(platform.sessions) as session:
        a, b = tenant_of(session, AMC_A), tenant_of(session, AMC_B)
        nir_a, nir_b = PEOPLE_A[0].nir, PEOPLE_B[0].nir
        victim = session.scalar(
            select(Beneficiary).where(
                Beneficiary.tenant_id == a.id,
                Beneficiary.nir_index
                == platform.keyring.indexer(session, a.scope).index("nir", str(nir_a)),
            )
        )
        target = session.scalar(
            select(Beneficiary).where(
                Beneficiary.tenant_id == b.id,
                Beneficiary.nir_index
                == platform.keyring.indexer(session, b.scope).index("nir", str(nir_b)),
            )
        )
        assert victim is not None
        assert target is not None
        stolen = {column: getattr(victim, column) for column in sealed_columns(Beneficiary)}
        cipher_a = platform.keyring.cipher(session, a.scope)
        cipher_b = platform.keyring.cipher(session, b.scope)
        opened = [
            cipher_a.open("beneficiaries", column.removesuffix("_enc"), victim.id.hex, sealed)
            for column, sealed in stolen.items()
        ]
        assert any("Lefèvre" in value for value in opened)
        # B's cipher refuses each of them at B's row, and even at A's own coordinates.
        for column, sealed in stolen.items():
            for row in (target.id.hex, victim.id.hex):
                with pytest.raises(VerificationError):
                    cipher_b.open("beneficiaries", column.removesuffix("_enc"), row, sealed)
    with platform.engine.begin() as connection:  # an attacker's write, outside the application
        connection.execute(update(Beneficiary).where(Beneficiary.id == target.id).values(**stolen))
    with pytest.raises(VerificationError):
        services.find_by_nir(platform, AMC_B, str(PEOPLE_B[0].nir))
    assert_found_by_nir(platform, AMC_A, PEOPLE_A)
    assert_found_by_nir(platform, AMC_B, PEOPLE_B[1:])


def test_a_ciphertext_moved_to_another_row_of_the_same_tenant_is_refused(
    platform: Platform,
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    with transaction(platform.sessions) as session:
        tenant = tenant_of(session, AMC_A)
        indexer = platform.keyring.indexer(session, tenant.scope)
        rows = {
            p.nir: session.scalar(
                select(Beneficiary).where(
                    Beneficiary.tenant_id == tenant.id,
                    Beneficiary.nir_index == indexer.index("nir", str(p.nir)),
                )
            )
            for p in (PEOPLE_A[0], PEOPLE_A[3])
        }
        source, target = rows[PEOPLE_A[0].nir], rows[PEOPLE_A[3].nir]
        assert source is not None
        assert target is not None
        sealed = {column: getattr(source, column) for column in sealed_columns(Beneficiary)}
    # Another person's identity (birth date included, the proof of presence at the counter)
    # pasted onto this row, by someone who can write to the database, must not open there.
    with platform.engine.begin() as connection:
        connection.execute(update(Beneficiary).where(Beneficiary.id == target.id).values(**sealed))
    with pytest.raises(VerificationError):
        services.find_by_nir(platform, AMC_A, str(PEOPLE_A[3].nir))
    assert_found_by_nir(platform, AMC_A, PEOPLE_A[:1])


def test_the_same_person_covered_by_two_tenants_has_unlinkable_indexes(
    platform: Platform,
) -> None:
    shared = PEOPLE_A[0]
    add_insurer(platform, AMC_A, PEOPLE_A)
    add_insurer(
        platform, AMC_B, (*PEOPLE_B, Person("B0009", shared.nir, "X", "Y", date(1980, 5, 14)))
    )
    with transaction(platform.sessions) as session:
        indexes = {
            amc: session.scalars(
                select(Beneficiary.nir_index).where(
                    Beneficiary.tenant_id == tenant_of(session, amc).id
                )
            ).all()
            for amc in (AMC_A, AMC_B)
        }
    assert not set(indexes[AMC_A]) & set(indexes[AMC_B])
    # Each tenant finds only its own record of the person.
    assert [m.member_number for m in services.find_by_nir(platform, AMC_A, str(shared.nir))] == [
        "A0001"
    ]
    assert [m.member_number for m in services.find_by_nir(platform, AMC_B, str(shared.nir))] == [
        "B0009"
    ]


# --- master key rotation ------------------------------------------------------------------------


def test_after_a_master_rotation_a_new_process_still_finds_everyone(
    platform: Platform, second_process: Callable[[], Platform]
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    with transaction(platform.sessions) as session:
        before = {(r.scope, r.purpose, r.version): r.wrapped for r in key_rows(session)}
    assert services.rotate_master_key(platform) == len(before) == 5
    reopened = second_process()
    assert_found_by_nir(reopened, AMC_A, PEOPLE_A)
    assert_everything_opens(reopened, AMC_A, PEOPLE_A)
    with transaction(reopened.sessions) as session:
        after = {(r.scope, r.purpose, r.version): r.wrapped for r in key_rows(session)}
    assert after.keys() == before.keys()
    for ident, wrapped in after.items():
        assert wrapped != before[ident]
        assert int.from_bytes(wrapped[4:8], "big") == 2


def test_after_a_master_rotation_the_key_file_holds_only_the_new_key(
    platform: Platform, settings: Settings
) -> None:
    key_file = settings.resolved_master_key_file
    old_key = json.loads(key_file.read_text("utf-8"))["keys"]["1"]
    services.rotate_master_key(platform)
    doc = json.loads(key_file.read_text("utf-8"))
    assert doc["active"] == 2
    assert list(doc["keys"]) == ["2"]
    assert old_key not in key_file.read_text("utf-8")
    assert FileKeyProvider(key_file).versions() == [2]
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_a_copy_of_the_old_key_file_cannot_unwrap_the_rotated_keys(
    platform: Platform, settings: Settings, tmp_path: Path
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    stolen = tmp_path / "stolen-master.key"
    shutil.copy2(settings.resolved_master_key_file, stolen)
    thief = FileKeyProvider(stolen)
    with transaction(platform.sessions) as session:
        rows = key_rows(session)
        # Before the rotation the copy opens everything: the refusals below are the rotation's.
        for row in rows:
            assert thief.unwrap(row.wrapped, _context(row.scope, row.purpose, row.version))
    services.rotate_master_key(platform)
    with transaction(platform.sessions) as session:
        rows = key_rows(session)
    assert len(rows) == 5
    for row in rows:
        context = _context(row.scope, row.purpose, row.version)
        with pytest.raises(VerificationError):
            thief.unwrap(row.wrapped, context)
        relabelled = row.wrapped[:4] + (1).to_bytes(4, "big") + row.wrapped[8:]
        with pytest.raises(VerificationError):
            thief.unwrap(relabelled, context)


def test_a_process_started_before_a_master_rotation_still_reads_after_it(
    platform: Platform, second_process: Callable[[], Platform]
) -> None:
    # An API worker, running since before an operator ran `rempart keys rotate --master`.
    add_insurer(platform, AMC_A, PEOPLE_A)
    worker = second_process()
    services.rotate_master_key(platform)
    assert_found_by_nir(worker, AMC_A, PEOPLE_A)


def test_a_tenant_added_by_a_process_started_before_a_master_rotation_stays_readable(
    platform: Platform, second_process: Callable[[], Platform]
) -> None:
    worker = second_process()
    services.rotate_master_key(platform)
    # The worker registers an insurer after the rotation: its keys must not be wrapped under
    # the retired master key, or the insurer is shredded by accident.
    add_insurer(worker, AMC_B, PEOPLE_B)
    fresh = second_process()
    assert_found_by_nir(fresh, AMC_B, PEOPLE_B)


# --- data key rotation --------------------------------------------------------------------------


def test_a_data_rotation_reseals_every_row_of_the_tenant_under_the_new_key(
    platform: Platform,
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    add_insurer(platform, AMC_B, PEOPLE_B)
    calls: list[tuple[int, int]] = []
    resealed = services.rotate_data_key(
        platform, AMC_A, lambda done, total: calls.append((done, total))
    )
    # Two members and four beneficiaries.
    assert resealed == 6
    with transaction(platform.sessions) as session:
        a = tenant_of(session, AMC_A)
        versions = [
            *session.scalars(select(Beneficiary.key_version).where(Beneficiary.tenant_id == a.id)),
            *session.scalars(select(Member.key_version).where(Member.tenant_id == a.id)),
        ]
        assert sorted(versions) == [2] * 6
        # The ciphertexts themselves, not only the bookkeeping column, are under key 2.
        assert {FieldCipher.key_version(s) for *_, s in sealed_values(session, a.id)} == {2}
        assert [(r.purpose, r.version, r.state) for r in key_rows(session, a.scope)] == [
            ("data", 2, "active"),
            ("index", 1, "active"),
        ]
        # The other tenant is not touched.
        b = tenant_of(session, AMC_B)
        assert {FieldCipher.key_version(s) for *_, s in sealed_values(session, b.id)} == {1}
        assert [(r.purpose, r.version) for r in key_rows(session, b.scope)] == [
            ("data", 1),
            ("index", 1),
        ]
    assert calls
    assert calls[-1] == (6, 6)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert_everything_opens(platform, AMC_A, PEOPLE_A)
    assert_found_by_nir(platform, AMC_A, PEOPLE_A)
    assert_found_by_nir(platform, AMC_B, PEOPLE_B)


def test_after_a_data_rotation_the_old_data_key_is_gone_from_the_database(
    platform: Platform,
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    scope = scope_of(platform, AMC_A)
    with transaction(platform.sessions) as session:
        (old_row,) = (r for r in key_rows(session, scope) if r.purpose == "data")
        old_key = unwrap(platform, old_row)
        old_wrapped = old_row.wrapped
    services.rotate_data_key(platform, AMC_A)
    with transaction(platform.sessions) as session:
        rows = key_rows(session)
        assert old_wrapped not in [r.wrapped for r in rows]
        assert old_key not in [unwrap(platform, r) for r in rows]
        sealed = sealed_values(session, tenant_of(session, AMC_A).id)
    # The old key, were it kept somewhere, no longer opens anything either.
    stale = FieldCipher(scope, {2: old_key}, 2)
    for table, column, row, ciphertext in sealed:
        with pytest.raises(VerificationError):
            stale.open(table, column, row, ciphertext)


def test_an_import_after_a_data_rotation_seals_under_the_new_key(platform: Platform) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    services.rotate_data_key(platform, AMC_A)
    report = import_members(
        platform, AMC_A, io.BytesIO(member_file([LATECOMER])), ImportOptions(delta=True)
    )
    assert report.committed
    assert report.inserted == 1
    everyone = (*PEOPLE_A, LATECOMER)
    assert_found_by_nir(platform, AMC_A, everyone)
    assert_everything_opens(platform, AMC_A, everyone)
    with transaction(platform.sessions) as session:
        a = tenant_of(session, AMC_A)
        assert {FieldCipher.key_version(s) for *_, s in sealed_values(session, a.id)} == {2}


def test_two_data_rotations_in_a_row_keep_everything_readable(
    platform: Platform, second_process: Callable[[], Platform]
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    reader = second_process()  # a worker that cached the tenant's cipher before the rotations
    assert_found_by_nir(reader, AMC_A, PEOPLE_A)
    services.rotate_data_key(platform, AMC_A)
    services.rotate_data_key(platform, AMC_A)
    assert_found_by_nir(platform, AMC_A, PEOPLE_A)
    assert_found_by_nir(reader, AMC_A, PEOPLE_A)
    with transaction(platform.sessions) as session:
        a = tenant_of(session, AMC_A)
        assert {FieldCipher.key_version(s) for *_, s in sealed_values(session, a.id)} == {3}
        assert [(r.purpose, r.version) for r in key_rows(session, a.scope)] == [
            ("data", 3),
            ("index", 1),
        ]


class _ArrivingFile(io.BytesIO):
    """A member file read line by line; ``on_first_row`` runs when its first row is read."""

    def __init__(self, data: bytes, on_first_row: Callable[[], None]) -> None:
        super().__init__(data)
        self._on_first_row: Callable[[], None] | None = on_first_row

    def __next__(self) -> bytes:
        line = super().__next__()
        if self._on_first_row is not None:
            run, self._on_first_row = self._on_first_row, None
            run()
        return line


def test_rows_of_an_import_in_flight_during_a_data_rotation_stay_readable(
    platform: Platform,
) -> None:
    # An import is under way (its file still uploading) when the operator rotates the key.
    add_insurer(platform, AMC_A, PEOPLE_A[:1])
    rotated: list[int] = []
    stream = _ArrivingFile(
        member_file(PEOPLE_A[1:]),
        lambda: rotated.append(services.rotate_data_key(platform, AMC_A)),
    )
    report = import_members(platform, AMC_A, stream, ImportOptions(delta=True))
    assert rotated == [2]  # the first member and beneficiary, re-sealed
    assert report.committed
    assert report.inserted == 3
    assert_found_by_nir(platform, AMC_A, PEOPLE_A)
    assert_everything_opens(platform, AMC_A, PEOPLE_A)


def test_a_platform_data_rotation_reseals_the_professionals_bank_details(
    platform: Platform,
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    report = services.import_professionals(platform, io.BytesIO(professional_file()))
    assert report.inserted == 1
    assert not report.errors
    calls: list[tuple[int, int]] = []
    resealed = services.rotate_data_key(
        platform, None, lambda done, total: calls.append((done, total))
    )
    assert resealed == 1
    assert calls[-1] == (1, 1)
    with transaction(platform.sessions) as session:
        (pro,) = session.scalars(select(Professional)).all()
        assert pro.key_version == 2
        assert FieldCipher.key_version(pro.iban_enc) == 2
        assert IBAN.encode() not in pro.iban_enc
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        assert cipher.open("professionals", "iban", pro.id.hex, pro.iban_enc) == IBAN
        assert [(r.purpose, r.version) for r in key_rows(session, PLATFORM_SCOPE)] == [
            ("data", 2),
            ("index", 1),
            ("integrity", 1),
        ]
        # The tenants' data is not the platform's: untouched.
        a = tenant_of(session, AMC_A)
        assert {FieldCipher.key_version(s) for *_, s in sealed_values(session, a.id)} == {1}
    # Re-loading the same file compares the IBAN on file with the file's: it opens, and matches.
    again = services.import_professionals(platform, io.BytesIO(professional_file()))
    assert (again.inserted, again.updated, again.unchanged, again.errors) == (0, 0, 1, [])
    assert_found_by_nir(platform, AMC_A, PEOPLE_A)


# --- crypto-shredding ---------------------------------------------------------------------------


def test_a_shredded_tenant_can_no_longer_be_searched(platform: Platform) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    add_insurer(platform, AMC_B, PEOPLE_B)
    assert services.shred_tenant(platform, AMC_A) == 2
    with pytest.raises(Conflict):
        services.find_by_nir(platform, AMC_A, str(PEOPLE_A[0].nir))
    assert_found_by_nir(platform, AMC_B, PEOPLE_B)
    assert_everything_opens(platform, AMC_B, PEOPLE_B)


def test_no_remaining_key_opens_a_shredded_tenants_fields(
    platform: Platform, second_process: Callable[[], Platform]
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    add_insurer(platform, AMC_B, PEOPLE_B)
    services.import_professionals(platform, io.BytesIO(professional_file()))
    scope = scope_of(platform, AMC_A)
    services.shred_tenant(platform, AMC_A)
    with transaction(platform.sessions) as session:
        tenant = tenant_of(session, AMC_A)
        assert tenant.status == "shredded"
        assert key_rows(session, scope) == []
        sealed = sealed_values(session, tenant.id)
        remaining = [(row, unwrap(platform, row)) for row in key_rows(session)]
        with pytest.raises(NotFound):
            platform.keyring.cipher(session, scope)
    # Crypto-shredding, not deletion: the ciphertexts are still there, and nothing opens them.
    # At least the two member numbers and one sealed field per beneficiary.
    assert len(sealed) >= 2 + len(PEOPLE_A)
    assert len(remaining) == 5  # the platform's three and the other tenant's two
    for row, key in remaining:
        for as_scope in (scope, row.scope):
            for table, column, row_id, ciphertext in sealed:
                version = FieldCipher.key_version(ciphertext)
                cipher = FieldCipher(as_scope, {version: key}, version)
                with pytest.raises(VerificationError):
                    cipher.open(table, column, row_id, ciphertext)
    # A fresh process has no key for the scope either.
    fresh = second_process()
    with transaction(fresh.sessions) as session, pytest.raises(NotFound):
        fresh.keyring.cipher(session, scope)


def test_shredding_a_tenant_twice_is_a_conflict(platform: Platform) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    services.shred_tenant(platform, AMC_A)
    with pytest.raises(Conflict):
        services.shred_tenant(platform, AMC_A)
    with transaction(platform.sessions) as session:
        assert tenant_of(session, AMC_A).status == "shredded"


def test_a_process_that_read_a_tenant_before_it_was_shredded_cannot_read_it_after(
    platform: Platform, second_process: Callable[[], Platform]
) -> None:
    add_insurer(platform, AMC_A, PEOPLE_A)
    worker = second_process()
    assert_found_by_nir(worker, AMC_A, PEOPLE_A)  # its keyring now caches the tenant's keys
    services.shred_tenant(platform, AMC_A)
    with pytest.raises(Conflict):
        services.find_by_nir(worker, AMC_A, str(PEOPLE_A[0].nir))
    with transaction(worker.sessions) as session, pytest.raises(NotFound):
        worker.keyring.cipher(session, scope_of(worker, AMC_A))


def test_a_platform_secret_used_first_by_two_workers_at_once_is_one_secret(
    platform: Platform,
) -> None:
    barrier = threading.Barrier(4)
    found: list[bytes] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        keyring = Keyring(FileKeyProvider(platform.settings.resolved_master_key_file))
        barrier.wait()
        try:
            with transaction(platform.sessions) as session:
                found.append(keyring.platform_secret(session, "novel"))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=first_use) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert len(found) == 4
    assert len(set(found)) == 1


def test_a_platform_data_rotation_reseals_the_accounts_too(platform: Platform) -> None:
    """An account's address and TOTP secret are sealed under the platform's key: after a
    rotation, once the previous key is gone, the person still signs in."""
    secret = add_user(
        platform,
        "operator",
        "ops@rempart.example",
        actor="test",
        password=PASSWORD,
        enrol_totp=True,
    ).totp_uri
    assert secret is not None
    assert services.rotate_data_key(platform, None) == 1  # the one account
    with transaction(platform.sessions) as session:
        (user,) = session.scalars(select(User)).all()
        assert user.key_version == 2
        assert user.totp_secret_enc is not None
        assert FieldCipher.key_version(user.email_enc) == 2
        assert FieldCipher.key_version(user.totp_secret_enc) == 2
        assert [r.version for r in key_rows(session, PLATFORM_SCOPE) if r.purpose == "data"] == [2]
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        assert cipher.open("users", "email", user.id.hex, user.email_enc) == "ops@rempart.example"
        opened = cipher.open("users", "totp_secret", user.id.hex, user.totp_secret_enc)
    assert opened in secret


def test_a_platform_secrets_name_longer_than_its_column_is_refused_on_every_database(
    platform: Platform,
) -> None:
    # SQLite would keep "webauthn-enrolment" whole where PostgreSQL refuses it at run time.
    with transaction(platform.sessions) as session, pytest.raises(ValueError, match="1 to 10"):
        platform.keyring.platform_secret(session, "webauthn-enrolment")
    with transaction(platform.sessions) as session:
        assert len(platform.keyring.platform_secret(session, "key-enrol")) == 32
