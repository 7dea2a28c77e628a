"""Rights checks over HTTP through the whole path (client token, quotas, look-up, engagement,
access log with group commit) against the same server's bare JSON endpoint (/health), measured
in the same run by a closed-loop load generator on loopback: requests/s, p50 and p99.

Bounded: each endpoint is driven for a fixed number of seconds by a fixed number of threads.
Quotas are set high so that they are measured, not tripped (the members checked cycle).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tests.support import BASE_PLAN, PHARMACIST_AM, add_professionals, member_file, person

from bench.common import record, scratch_database
from rempart.identity import clients
from rempart.platform import initialise
from rempart.registry import services
from rempart.registry.member_import import ImportOptions, import_members
from rempart.settings import Settings

AMC, AM = "75000001", PHARMACIST_AM
MEMBERS = 2000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(home: Path, database_url: str | None) -> tuple[str, Ed25519PrivateKey, Settings]:
    settings = Settings(
        env="test",
        home=home,
        database_url=database_url,
        # One client checks 2,000 different people: the detection would rightly stop it. The
        # bench measures the bare path; the detection's own cost is measured apart (guard.md).
        guard_detection=False,
        quota_account_hour=10**6,
        quota_account_day=10**6,
        quota_professional_hour=10**6,
        quota_professional_day=10**6,
    )
    platform, _ = initialise(settings)
    services.add_tenant(platform, AMC, "Bench")
    services.load_plan(platform, AMC, json.dumps(BASE_PLAN).encode())
    import_members(
        platform, AMC, io.BytesIO(member_file([person(n) for n in range(MEMBERS)])), ImportOptions()
    )
    add_professionals(platform)
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    view = clients.register_client(
        platform, clients.professional_id_of(platform, AM), "bench", pem, "bench"
    )
    platform.close()
    return str(view.client_id), key, settings


def _token(port: int, client_id: str, key: Ed25519PrivateKey) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": "http://127.0.0.1:8000/api/v1/auth/token",
        "exp": int(time.time()) + 30,
        "jti": uuid.uuid4().hex,
    }
    body = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_assertion_type": clients.ASSERTION_TYPE,
            "client_assertion": jwt.encode(claims, key, algorithm="EdDSA"),
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request(
        "POST", "/api/v1/auth/token", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    response = conn.getresponse()
    assert response.status == 200, response.read()
    return str(json.loads(response.read())["access_token"])


def _drive(
    port: int,
    method: str,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    seconds: float,
    threads: int,
) -> tuple[float, float, float, int]:
    """Closed loop: each thread sends its next request when the last is answered."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine, n = [], offset
        while time.perf_counter() < stop:
            start = time.perf_counter()
            conn.request(method, path, bodies[n % len(bodies)] if bodies else None, headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    errors[0] += 1
            n += threads
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return len(latencies) / elapsed, percentile(0.50), percentile(0.99), errors[0]


def main(seconds: float, threads: int, database_url: str | None) -> None:
    with scratch_database(database_url) as url:
        _main(seconds, threads, url, "sqlite" if database_url is None else "postgresql")


def _main(seconds: float, threads: int, database_url: str | None, backend: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-http-"))
    server = None
    try:
        client_id, key, settings = _setup(work / "home", database_url)
        port = _free_port()
        env = {
            **os.environ,
            "REMPART_HOME": str(settings.home),
            "REMPART_ENV": "test",
            "REMPART_DATABASE_URL": settings.resolved_database_url,
            "REMPART_GUARD_DETECTION": "false",
            **{
                f"REMPART_QUOTA_{k}": str(10**6)
                for k in ("ACCOUNT_HOUR", "ACCOUNT_DAY", "PROFESSIONAL_HOUR", "PROFESSIONAL_DAY")
            },
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "rempart.app:create_app",
                "--factory",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
        )
        for _ in range(200):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                time.sleep(0.1)
        token = _token(port, client_id, key)
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
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        _drive(port, "GET", "/health", [], {}, 2, threads)  # warm-up
        _drive(port, "POST", "/api/v1/eligibility", bodies, headers, 2, threads)
        bare = _drive(port, "GET", "/health", [], {}, seconds, threads)
        full = _drive(port, "POST", "/api/v1/eligibility", bodies, headers, seconds, threads)
        assert full[3] == 0, f"{full[3]} rights checks failed"
        record(
            f"eligibility_http_{backend}",
            full[0],
            "requests/s",
            bare[0],
            "ratio >= 0.5 to the bare endpoint, p99 <= 25 ms at 1,000 req/s (issue 3)",
            p50_ms=round(full[1], 2),
            p99_ms=round(full[2], 2),
            bare_p50_ms=round(bare[1], 2),
            bare_p99_ms=round(bare[2], 2),
            threads=threads,
            seconds=seconds,
            workers=1,
        )
        print(f"rights check p50 {full[1]:.1f} ms, p99 {full[2]:.1f} ms;", end=" ")
        print(f"bare p50 {bare[1]:.1f} ms, p99 {bare[2]:.1f} ms")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    main(args.seconds, args.threads, args.database_url)
