"""What the access log costs the rights check over HTTP (issue 6: at most 10 %).

The same server (the whole path: token, quotas, look-up, engagement) is started twice on the
same database, alternately: as it is, each check answered once its event is committed, and with
a recorder that keeps nothing (``bench.ledgerless``, never used outside benchmarks). Rounds
alternate and the medians are compared.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tests.support import person

from bench.common import median, record, scratch_database
from bench.eligibility_http import AMC, MEMBERS, _drive, _free_port, _setup, _token
from rempart.settings import Settings


@contextmanager
def _server(factory: str, settings: Settings) -> Iterator[int]:
    port = _free_port()
    env = {
        **os.environ,
        "REMPART_HOME": str(settings.home),
        "REMPART_ENV": "test",
        "REMPART_DATABASE_URL": settings.resolved_database_url,
        "REMPART_GUARD_DETECTION": "false",  # one client, 2,000 people: see eligibility_http
        **{
            f"REMPART_QUOTA_{k}": str(10**6)
            for k in ("ACCOUNT_HOUR", "ACCOUNT_DAY", "PROFESSIONAL_HOUR", "PROFESSIONAL_DAY")
        },
    }
    command = [sys.executable, "-m", "uvicorn", factory, "--factory", "--port", str(port)]
    server = subprocess.Popen([*command, "--no-access-log", "--log-level", "warning"], env=env)
    try:
        for _ in range(200):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(seconds: float, threads: int, rounds: int, database_url: str | None) -> None:
    with scratch_database(database_url) as url:
        work = Path(tempfile.mkdtemp(prefix="rempart-bench-ledger-http-"))
        try:
            client_id, key, settings = _setup(work / "home", url)
            today = datetime.now(UTC).date().isoformat()
            bodies = [
                json.dumps(
                    {
                        "amc_number": AMC,
                        "member_number": p.member_number,
                        "birth_date": p.birth_date,
                        "birth_rank": 1,
                        "domain": "PHAR",
                        "care_date": today,
                    }
                ).encode()
                for p in (person(n) for n in range(MEMBERS))
            ]
            results: dict[str, list[float]] = {"logged": [], "unlogged": []}
            factories = {
                "logged": "rempart.app:create_app",
                "unlogged": "bench.ledgerless:create_app",
            }
            for n in range(rounds + 1):  # round 0 warms up and is not counted
                for name, factory in factories.items():
                    with _server(factory, settings) as port:
                        token = _token(port, client_id, key)
                        headers = {
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json",
                        }
                        path = "/api/v1/eligibility"
                        _drive(port, "POST", path, bodies, headers, 1, threads)
                        rate, _, _, errors = _drive(
                            port, "POST", path, bodies, headers, seconds, threads
                        )
                        assert errors == 0, f"{errors} rights checks failed"
                    if n:
                        results[name].append(rate)
                if n:
                    print(
                        f"round {n}: with the log {results['logged'][-1]:,.0f} req/s, "
                        f"without {results['unlogged'][-1]:,.0f}"
                    )
            record(
                f"ledger_http_{'sqlite' if database_url is None else 'postgresql'}",
                median(results["logged"]),
                "requests/s",
                median(results["unlogged"]),
                "the access log costs the HTTP rights check at most 10 % (ratio >= 0.9, issue 6)",
                threads=threads,
                seconds=seconds,
                rounds=rounds,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    main(args.seconds, args.threads, args.rounds, args.database_url)
