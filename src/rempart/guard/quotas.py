"""Quotas of distinct beneficiaries per account and per professional, per hour and per day.

A stolen session reading the file one person after another meets these first. Counting is of
*distinct* people (the keyed rights-check key, misses included): a pharmacist who checks the
same patient twice uses one unit, a scraper guessing cards uses one per guess.

Windows are fixed (the hour, the day, in UTC); a count lives as long as its window. Stores:
``MemoryQuotaStore`` for a single worker, ``RedisQuotaStore`` shared by every worker and host.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from rempart.errors import RateLimited
from rempart.settings import Settings

QUOTA_KEY = "quota"  # the platform secret keying what is counted: Redis holds no number in clear


@dataclass(frozen=True)
class Limit:
    scope: str  # "account" or "professional"
    window_seconds: int
    limit: int


class QuotaStore(Protocol):
    def add(self, key: str, member: str, ttl_seconds: int) -> tuple[bool, int]:
        """Add ``member`` to the set ``key`` (kept ``ttl_seconds``): was it new, and the size."""
        ...

    def remove(self, key: str, member: str) -> None: ...


class MemoryQuotaStore:
    """Sets in this process's memory: right for one worker, wrong for several."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._sets: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def add(self, key: str, member: str, ttl_seconds: int) -> tuple[bool, int]:
        now = self._clock()
        with self._lock:
            expires, members = self._sets.get(key, (now + ttl_seconds, set()))
            if expires <= now:
                expires, members = now + ttl_seconds, set()
            new = member not in members
            members.add(member)
            self._sets[key] = (expires, members)
            if len(self._sets) > 100_000:  # forget windows that are over
                self._sets = {k: v for k, v in self._sets.items() if v[0] > now}
            return new, len(members)

    def remove(self, key: str, member: str) -> None:
        with self._lock:
            if key in self._sets:
                self._sets[key][1].discard(member)


class RedisQuotaStore:
    """Sets in Redis, shared by every worker: SADD, SCARD and EXPIRE in one transaction."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisQuotaStore:
        return cls(redis.Redis.from_url(url))

    def add(self, key: str, member: str, ttl_seconds: int) -> tuple[bool, int]:
        pipe = self._redis.pipeline(transaction=True)
        pipe.sadd(key, member)
        pipe.scard(key)
        pipe.expire(key, ttl_seconds, nx=True)
        added, size, _ = pipe.execute()
        return bool(added), int(size)

    def remove(self, key: str, member: str) -> None:
        self._redis.srem(key, member)


class Quotas:
    """Checks a set of limits for one access; refuses it, uncounted, when one is exceeded."""

    def __init__(
        self, store: QuotaStore, limits: Sequence[Limit], clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.limits, self.clock = store, tuple(limits), clock

    def admit(self, owners: dict[str, str], beneficiary: str) -> None:
        """Count ``beneficiary`` for each owner (scope -> id); raise RateLimited when over."""
        now = int(self.clock())
        added: list[str] = []
        for limit in self.limits:
            window = now // limit.window_seconds
            key = f"quota:{limit.scope}:{owners[limit.scope]}:{limit.window_seconds}:{window}"
            new, size = self.store.add(key, beneficiary, limit.window_seconds + 60)
            if new:
                added.append(key)
            if size > limit.limit:
                for key in added:  # a refused access uses up no quota
                    self.store.remove(key, beneficiary)
                retry = limit.window_seconds - now % limit.window_seconds
                raise RateLimited(
                    f"too many different patients for this {limit.scope} "
                    f"({limit.limit} per {_span(limit.window_seconds)})",
                    retry_after=retry,
                )


def limits_from(settings: Settings) -> list[Limit]:
    return [
        Limit("account", 3600, settings.quota_account_hour),
        Limit("account", 86400, settings.quota_account_day),
        Limit("professional", 3600, settings.quota_professional_hour),
        Limit("professional", 86400, settings.quota_professional_day),
    ]


def member_file_quotas(quotas: Quotas, settings: Settings) -> Quotas:
    """The limits on the member files an insurer's account opens (different members an hour
    and a day, the accounts' limits), counted in the same store as ``quotas``."""
    limits = [limit for limit in limits_from(settings) if limit.scope == "account"]
    return Quotas(quotas.store, limits, quotas.clock)


def quotas_for(settings: Settings) -> Quotas:
    """Redis when REMPART_REDIS_URL is set (every worker shares the counts), memory otherwise."""
    store: QuotaStore = (
        RedisQuotaStore.from_url(settings.redis_url) if settings.redis_url else MemoryQuotaStore()
    )
    return Quotas(store, limits_from(settings))


def _span(seconds: int) -> str:
    return {3600: "hour", 86400: "day"}.get(seconds, f"{seconds} s")
