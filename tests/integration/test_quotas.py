"""Quotas shared through Redis by several workers, and enforced by the rights check."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from rempart.app import create_app
from rempart.errors import RateLimited
from rempart.guard.quotas import Limit, Quotas, RedisQuotaStore
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from tests.conftest import REDIS_URL
from tests.support import (
    AMC,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    member_file,
    person,
    sign_in,
    today,
)

needs_redis = pytest.mark.skipif(
    REDIS_URL is None, reason="REMPART_TEST_REDIS_URL is not set (CI sets it)"
)


@needs_redis
def test_two_workers_share_one_count_through_redis() -> None:
    assert REDIS_URL is not None
    owners = {"account": uuid.uuid4().hex, "professional": "p"}
    limit = Limit("account", 3600, 4)
    worker_a = Quotas(RedisQuotaStore.from_url(REDIS_URL), [limit])
    worker_b = Quotas(RedisQuotaStore.from_url(REDIS_URL), [limit])
    worker_a.admit(owners, "p1")
    worker_b.admit(owners, "p2")
    worker_a.admit(owners, "p3")
    worker_b.admit(owners, "p1")  # already counted by the other worker
    worker_b.admit(owners, "p4")
    with pytest.raises(RateLimited):
        worker_a.admit(owners, "p5")
    keys = redis.Redis.from_url(REDIS_URL).keys(f"quota:account:{owners['account']}:*")
    assert len(keys) == 1
    assert 0 < redis.Redis.from_url(REDIS_URL).ttl(keys[0]) <= 3660


@pytest.fixture
def api(platform: Platform) -> Iterator[tuple[TestClient, Platform]]:
    tight = platform.settings.model_copy(update={"quota_account_hour": 3})
    add_insurer(platform)
    add_professionals(platform)
    people = [person(n) for n in range(1, 6)]
    import_members(platform, AMC, io.BytesIO(member_file(people)), ImportOptions())
    with TestClient(create_app(tight, platform)) as client:
        yield client, platform


def test_the_rights_check_stops_at_the_quota_and_records_the_attempt(
    api: tuple[TestClient, Platform],
) -> None:
    client, platform = api
    secret = add_account(platform, "professional", "pharma@example.org", am_number=PHARMACIST_AM)
    headers = sign_in(client, platform, "pharma@example.org", secret)
    day = today().isoformat()

    def check(n: int) -> int:
        p = person(n)
        body = {
            "amc_number": AMC,
            "member_number": p.member_number,
            "birth_date": p.birth_date,
            "birth_rank": 1,
            "domain": "PHAR",
            "care_date": day,
        }
        response = client.post("/api/v1/eligibility", json=body, headers=headers)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
            assert p.last_name not in response.text
        return response.status_code

    assert [check(n) for n in (1, 2, 3, 1, 4, 5, 2)] == [200, 200, 200, 200, 429, 429, 200]
    with platform.sessions() as session:
        outcomes = [
            json.loads(e)["outcome"]
            for e in session.scalars(
                select(LedgerEntry.event).where(LedgerEntry.tag == "beneficiary:rights:read")
            )
        ]
    assert outcomes.count("throttled") == 2
