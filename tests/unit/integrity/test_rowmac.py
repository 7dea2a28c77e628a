"""The row MAC and journal encodings: one encoding per value, every column bound."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.integrity import rowmac

KEY = bytes(range(32))
COLUMNS = ("a", "b", "id")
ROW_ID = uuid.UUID(int=1)


def mac(row: dict[str, object], table: str = "t", key: bytes = KEY) -> bytes:
    return rowmac.row_mac(key, table, tuple(sorted(row)), row)


@pytest.mark.parametrize(
    "values",
    [
        (1, True, "1", b"1"),
        (0, False, "", b"", None),
        (date(2026, 1, 1), "2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
        (ROW_ID, ROW_ID.bytes, ROW_ID.hex, str(ROW_ID)),
    ],
)
def test_values_of_different_types_never_encode_alike(values: tuple[object, ...]) -> None:
    macs = {mac({"id": ROW_ID, "a": value}) for value in values}
    assert len(macs) == len(values)


def test_column_boundaries_are_unambiguous() -> None:
    assert mac({"id": ROW_ID, "a": "xy", "b": "z"}) != mac({"id": ROW_ID, "a": "x", "b": "yz"})
    assert mac({"id": ROW_ID, "a": "x"}) != mac({"id": ROW_ID, "b": "x"})


def test_the_mac_binds_the_table_the_row_id_and_the_key() -> None:
    row = {"id": ROW_ID, "a": "x"}
    assert mac(row) != mac(row, table="u")
    assert mac(row) != mac(row | {"id": uuid.UUID(int=2)})
    assert mac(row) != mac(row, key=bytes(32))
    assert len(mac(row)) == rowmac.MAC_BYTES


def test_times_are_encoded_in_utc_and_naive_ones_refused() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert mac({"id": ROW_ID, "a": moment}) == mac({"id": ROW_ID, "a": moment.astimezone(paris)})
    with pytest.raises(ValueError, match="naive"):
        mac({"id": ROW_ID, "a": datetime(2026, 1, 1)})
    with pytest.raises(TypeError, match="no canonical encoding"):
        mac({"id": ROW_ID, "a": 1.5})


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.uuids(),
    st.dates(),
)


@given(st.tuples(scalars, scalars), st.tuples(scalars, scalars))
def test_any_change_of_any_column_changes_the_mac(
    before: tuple[object, object], after: tuple[object, object]
) -> None:
    old = {"id": ROW_ID, "a": before[0], "b": before[1]}
    new = {"id": ROW_ID, "a": after[0], "b": after[1]}
    same = all(type(x) is type(y) and x == y for x, y in zip(before, after, strict=True))
    assert (mac(old) == mac(new)) == same


def test_journal_entries_round_trip_and_their_digest_binds_number_and_table() -> None:
    blob = rowmac.entry(rowmac.INSERT, ROW_ID, b"m" * 16) + rowmac.entry(
        rowmac.DELETE, uuid.UUID(int=2), None
    )
    assert list(rowmac.entries(blob)) == [
        (rowmac.INSERT, ROW_ID, b"m" * 16),
        (rowmac.DELETE, uuid.UUID(int=2), bytes(16)),
    ]
    digest = rowmac.journal_digest(1, "users", blob)
    assert digest != rowmac.journal_digest(2, "users", blob)
    assert digest != rowmac.journal_digest(1, "tenants", blob)
    with pytest.raises(ValueError, match="whole number"):
        list(rowmac.entries(blob[:-1]))
    with pytest.raises(ValueError, match="unknown"):
        list(rowmac.entries(b"Z" + blob[1:]))


def test_the_table_commitment_depends_on_every_pair_not_on_order() -> None:
    rows = {uuid.UUID(int=n): bytes([n]) * 16 for n in range(1, 4)}
    assert rowmac.commitment(rows) == rowmac.commitment(dict(reversed(rows.items())))
    assert rowmac.commitment(rows) != rowmac.commitment(rows | {uuid.UUID(int=1): bytes(16)})
    assert rowmac.commitment(rows) != rowmac.commitment(dict(list(rows.items())[:2]))
