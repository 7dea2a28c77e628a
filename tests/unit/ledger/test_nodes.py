"""Stored-tree arithmetic against the reference in-memory tree, and the event encoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.ledger import nodes
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.merkle import MemoryTree, leaf_hash


def test_appending_leaf_by_leaf_reproduces_every_root_and_frontier() -> None:
    stored: dict[tuple[int, int], bytes] = {}
    siblings: dict[int, bytes] = {}
    tree = MemoryTree()
    for n in range(130):
        h = leaf_hash(n.to_bytes(4, "big"))
        tree.append(h)
        completed = nodes.append(n, h, siblings)
        assert completed[0] == (0, n, h)
        stored.update({(lv, i): x for lv, i, x in completed})
        size = n + 1
        assert nodes.frontier_root(siblings) == tree.root(size)
        assert [stored[k] for k in nodes.frontier(size)] == [
            siblings[lv] for lv in sorted(siblings, reverse=True)
        ]
        for start in range(0, size, 7):
            assert nodes.subtree_hash(
                start, size, lambda lv, i: stored[(lv, i)]
            ) == tree.subtree_hash(start, size)


def test_the_empty_frontier_has_the_empty_root() -> None:
    assert nodes.frontier_root({}) == MemoryTree().root(0)
    assert nodes.frontier(0) == []


def test_frontier_names_one_subtree_per_set_bit() -> None:
    assert nodes.frontier(13) == [(3, 0), (2, 2), (0, 12)]


EVENT = AccessEvent(
    at=datetime(2026, 1, 29, 9, 30, tzinfo=UTC),
    tag=Tag.RIGHTS_READ,
    actor="user:42",
    outcome="open",
    purpose="rights-check",
    organisation="751234567",
    tenant="75000001",
    beneficiary="9f2c",
    fields=("status", "rate"),
    ip="192.0.2.1",
)


def test_an_event_has_one_canonical_encoding_and_round_trips() -> None:
    encoded = EVENT.encode()
    assert encoded.startswith(b'{"actor":"user:42","at":"2026-01-29T09:30:00.000000+00:00"')
    assert b" " not in encoded.replace(b"rights-check", b"")
    assert AccessEvent.decode(encoded) == EVENT


def test_an_event_in_another_time_zone_encodes_as_the_same_utc_instant() -> None:
    fields = {name: getattr(EVENT, name) for name in EVENT.__slots__}
    fields["at"] = EVENT.at.astimezone(timezone(timedelta(hours=1)))
    assert AccessEvent(**fields).encode() == EVENT.encode()


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        AccessEvent(at=datetime(2026, 1, 1), tag=Tag.RIGHTS_READ, actor="a", outcome="ok")


@settings(max_examples=200, database=None)
@given(
    actor=st.text(max_size=30),
    purpose=st.text(max_size=30),
    fields=st.lists(st.text(max_size=10), max_size=4),
)
def test_any_event_round_trips(actor: str, purpose: str, fields: list[str]) -> None:
    event = AccessEvent(EVENT.at, Tag.IDENTITY_READ, actor, "ok", purpose, fields=tuple(fields))
    assert AccessEvent.decode(event.encode()) == event
