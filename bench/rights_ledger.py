"""What the access log costs the rights check (issue 6: at most 10 %).

The same rights checks (authentication of a client's token, quotas, look-up, engagement) are run
in-process by concurrent threads (8 by default), alternately with the real group-commit recorder
(each check waits until its event is committed) and with a recorder that keeps nothing: the
ratio of the two is the ledger's cost. Sequential checks (one thread, so no batching) are
reported beside it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import jwt
from tests.support import person

from bench.common import median, record, scratch_database
from bench.eligibility_http import AMC, MEMBERS, _setup
from bench.ledgerless import Forgetful
from rempart.guard.quotas import quotas_for
from rempart.identity import clients
from rempart.identity.auth import Client, authenticate
from rempart.ledger.recorder import LedgerRecorder, Recorder
from rempart.platform import Platform, open_platform
from rempart.rights.services import CardQuery, check_rights

NOBODY = Client(ip=None, user_agent=None)


def _token(platform: Platform, client_id: str, key: object) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{platform.settings.public_url.rstrip('/')}/api/v1/auth/token",
        "exp": int(time.time()) + 30,
        "jti": uuid.uuid4().hex,
    }
    assertion = jwt.encode(claims, key, algorithm="EdDSA")  # type: ignore[arg-type]
    granted = clients.exchange_assertion(
        platform, "client_credentials", clients.ASSERTION_TYPE, assertion, NOBODY
    )
    return granted.access_token


def main(checks: int, rounds: int, database_url: str | None, threads: int = 8) -> None:
    with scratch_database(database_url) as url:
        _main(checks, rounds, url, "sqlite" if database_url is None else "postgresql", threads)


def _main(checks: int, rounds: int, database_url: str | None, backend: str, threads: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    try:
        client_id, key, settings = _setup(work / "home", database_url)
        platform = open_platform(settings)
        token = _token(platform, client_id, key)
        quotas = quotas_for(settings)
        today = datetime.now(UTC).date()
        queries = [
            CardQuery(AMC, p.member_number, date.fromisoformat(p.birth_date), 1, "PHAR", today)
            for p in (person(n) for n in range(MEMBERS))
        ]

        def run(recorder: Recorder, count: int, offset: int = 0) -> None:
            for i in range(offset, offset + count):
                caller = authenticate(platform, token)
                check_rights(platform, recorder, quotas, caller, queries[i % MEMBERS], NOBODY)

        def rate(recorder: Recorder, threads: int) -> float:
            share = checks // threads
            pool = [
                threading.Thread(target=run, args=(recorder, share, n * share))
                for n in range(threads)
            ]
            start = time.perf_counter()
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            return share * threads / (time.perf_counter() - start)

        ledger = LedgerRecorder(platform.engine)
        forgetful = Forgetful()
        run(ledger, 300)  # warm-up: caches, the recorder's thread
        run(forgetful, 300)
        logged, bare, logged_1, bare_1 = [], [], [], []
        for n in range(rounds):
            logged.append(rate(ledger, threads))
            bare.append(rate(forgetful, threads))
            logged_1.append(rate(ledger, 1))
            bare_1.append(rate(forgetful, 1))
            print(
                f"round {n + 1}: {threads} threads {logged[-1]:,.0f} vs {bare[-1]:,.0f} checks/s, "
                f"1 thread {logged_1[-1]:,.0f} vs {bare_1[-1]:,.0f}"
            )
        ledger.close()
        platform.close()
        record(
            f"rights_ledger_{backend}",
            median(logged),
            "checks/s",
            median(bare),
            "the access log costs the rights check at most 10 % (ratio >= 0.9)",
            threads=threads,
            sequential=round(median(logged_1), 1),
            sequential_baseline=round(median(bare_1), 1),
            sequential_ratio=round(median(logged_1) / median(bare_1), 3),
            checks=checks,
            rounds=rounds,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=2000, help="checks per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8, help="concurrent checks")
    parser.add_argument("--database-url", help="PostgreSQL URL; default: a SQLite file")
    args = parser.parse_args()
    main(args.checks, args.rounds, args.database_url, args.threads)
