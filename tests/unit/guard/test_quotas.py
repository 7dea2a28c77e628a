"""Quotas of distinct patients: the bound, repeats, windows, and refusals that cost nothing."""

from __future__ import annotations

import pytest

from rempart.errors import RateLimited
from rempart.guard.quotas import Limit, MemoryQuotaStore, Quotas

OWNERS = {"account": "a1", "professional": "p1"}


class Clock:
    def __init__(self, now: float = 1_000_000 * 3600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def quotas(clock: Clock, *limits: Limit) -> Quotas:
    return Quotas(MemoryQuotaStore(clock), limits or (Limit("account", 3600, 3),), clock)


def test_the_quota_trips_at_its_bound_and_says_when_to_retry() -> None:
    clock = Clock(1_000_000 * 3600.0 + 600)  # ten minutes into an hour
    q = quotas(clock)
    for patient in ("p1", "p2", "p3"):
        q.admit(OWNERS, patient)
    with pytest.raises(RateLimited) as refused:
        q.admit(OWNERS, "p4")
    assert refused.value.retry_after == 3000
    assert "3 per hour" in refused.value.detail


def test_the_same_patient_again_costs_nothing() -> None:
    q = quotas(Clock())
    for _ in range(10):
        q.admit(OWNERS, "p1")
    q.admit(OWNERS, "p2")
    q.admit(OWNERS, "p3")


def test_a_refused_access_uses_no_quota_in_any_window() -> None:
    clock = Clock()
    q = quotas(clock, Limit("account", 86400, 5), Limit("account", 3600, 2))
    q.admit(OWNERS, "p1")
    q.admit(OWNERS, "p2")
    with pytest.raises(RateLimited):
        q.admit(OWNERS, "p3")  # over the hour: not counted for the day either
    clock.now += 3600
    for patient in ("p3", "p4"):
        q.admit(OWNERS, patient)
    with pytest.raises(RateLimited):
        q.admit(OWNERS, "p5")  # the hour again
    clock.now += 3600
    q.admit(OWNERS, "p5")  # day: p1 p2 p3 p4 p5 = 5
    with pytest.raises(RateLimited):
        q.admit(OWNERS, "p6")


def test_a_new_window_starts_afresh_and_owners_are_counted_apart() -> None:
    clock = Clock()
    q = quotas(clock)
    for patient in ("p1", "p2", "p3"):
        q.admit(OWNERS, patient)
    q.admit({"account": "a2", "professional": "p1"}, "p4")  # another account
    clock.now += 3600
    q.admit(OWNERS, "p4")
