"""Portal pages: the median server-side time of each main page, on the demo data, against the
same app's bare /health measured in the same run.

In-process (Starlette's TestClient, no network): the time is the server's work (session
look-up, form token, service call, template) plus the client's small, constant share, which
/health carries too. Each page is asked N times after one warm-up; the goal is ≤ 100 ms.
Run: ``.venv/bin/python -m bench.portal [--requests N] [--members M]``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from tests.support import add_account, csrf_of, portal_sign_in

from bench.common import median, record
from rempart.app import create_app
from rempart.platform import Platform, initialise
from rempart.registry import services
from rempart.registry.demo import TENANTS, demo_files
from rempart.registry.member_import import ImportOptions, import_members
from rempart.settings import Settings

GOAL_MS = 100.0


def _demo(home: Path, members: int) -> tuple[Platform, dict[str, str]]:
    """The demo data (as `rempart demo-data` loads them), and a sample card of it."""
    settings = Settings(
        env="test",
        home=home,
        argon2_time_cost=1,
        argon2_memory_kib=64,
        quota_account_hour=10**6,
        quota_account_day=10**6,
        quota_professional_hour=10**6,
        quota_professional_day=10**6,
    )
    platform, _ = initialise(settings)
    files = demo_files(members, 1)
    for amc, name in TENANTS:
        services.add_tenant(platform, amc, name)
        for plan in files.plans:
            services.load_plan(platform, amc, plan)
    services.import_professionals(platform, io.BytesIO(files.professionals))
    for amc, data in files.members.items():
        assert import_members(platform, amc, io.BytesIO(data), ImportOptions()).committed
    line = files.members[TENANTS[0][0]].decode().splitlines()[1].split(",")
    card = {"amc_number": TENANTS[0][0], "member_number": line[0], "birth_date": line[4]}
    professionals = files.professionals.decode().splitlines()[1:]
    pharmacy = next(r.split(",")[0] for r in professionals if ",pharmacist," in r)
    return platform, card | {"pharmacy": pharmacy}


def _timed(call: Callable[[], object], requests: int) -> float:
    call()  # warm-up: templates compiled, keys unwrapped, caches filled
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - start) * 1000)
        status = getattr(answer, "status_code", 200)
        assert status < 400, status
    return median(times)


def main(requests: int, members: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    try:
        platform, card = _demo(work / "home", members)
        app = create_app(platform.settings, platform)
        with TestClient(app) as health_client:
            clients = {}
            for role, email, binding in (
                ("professional", "pharmacie@bench.example", {"am_number": card["pharmacy"]}),
                ("amc", "gestion@bench.example", {"amc_number": card["amc_number"]}),
                ("operator", "exploitation@bench.example", {}),
            ):
                secret = add_account(platform, role, email, **binding)
                clients[role] = TestClient(app)
                portal_sign_in(clients[role], platform, email, secret)
            pro, amc, ops = clients["professional"], clients["amc"], clients["operator"]
            anonymous = TestClient(app)
            token = csrf_of(pro.get("/pro/").text)
            today = datetime.now(UTC).date().isoformat()
            rights = {
                "csrf": token,
                "amc_number": card["amc_number"],
                "member_number": card["member_number"],
                "birth_date": card["birth_date"],
                "birth_rank": "1",
                "domain": "PHAR",
                "care_date": today,
            }
            calculation = {k: v for k, v in rights.items() if k not in ("domain", "care_date")}
            calculation |= {
                "lines-0-act_code": "PH7",
                "lines-0-domain": "PHAR",
                "lines-0-care_date": today,
                "lines-0-quantity": "1",
                "lines-0-billed": "10,00",
                "lines-0-br": "10,00",
                "lines-0-amo_rate": "65",
            }
            # Invoices for the lists (the demo data has none): billed through the page.
            for number in range(20):
                form = calculation | {"invoice_number": f"B-{number}", "cle": f"bench{number:04}"}
                billed = pro.post("/pro/factures", data=form, follow_redirects=False)
                assert billed.status_code == 303, billed.status_code
            amc_token = csrf_of(amc.get("/amc/").text)
            member_file = {"csrf": amc_token, "member_number": card["member_number"]}
            pages: dict[str, Callable[[], object]] = {
                "GET /pro/": lambda: pro.get("/pro/"),
                "POST /pro/droits": lambda: pro.post("/pro/droits", data=rights),
                "GET /pro/calcul": lambda: pro.get("/pro/calcul"),
                "POST /pro/calcul": lambda: pro.post("/pro/calcul", data=calculation),
                "GET /pro/logiciels": lambda: pro.get("/pro/logiciels"),
                "GET /pro/accords": lambda: pro.get("/pro/accords"),
                "GET /pro/factures": lambda: pro.get("/pro/factures"),
                "GET /pro/paiements": lambda: pro.get("/pro/paiements"),
                "GET /pro/banque": lambda: pro.get("/pro/banque"),
                "GET /compte/securite": lambda: pro.get("/compte/securite"),
                "GET /amc/": lambda: amc.get("/amc/"),
                "GET /amc/garanties": lambda: amc.get("/amc/garanties"),
                "GET /amc/acces": lambda: amc.get("/amc/acces"),
                "POST /amc/beneficiaires": lambda: amc.post("/amc/beneficiaires", data=member_file),
                "GET /amc/factures": lambda: amc.get("/amc/factures"),
                "GET /amc/releves": lambda: amc.get("/amc/releves"),
                "GET /amc/incidents": lambda: amc.get("/amc/incidents"),
                "GET /ops/": lambda: ops.get("/ops/"),
                "GET /ops/cles": lambda: ops.get("/ops/cles"),
                "GET /ops/alertes": lambda: ops.get("/ops/alertes"),
                "GET /ops/incidents": lambda: ops.get("/ops/incidents"),
                "GET /ops/paiements": lambda: ops.get("/ops/paiements"),
                "GET /login": lambda: anonymous.get("/login"),
            }
            baseline = _timed(lambda: health_client.get("/health"), requests)
            medians = {}
            for name, call in pages.items():
                medians[name] = round(_timed(call, requests), 2)
                print(f"{name:<26} {medians[name]:7.2f} ms (median of {requests})")
            print(f"{'GET /health':<26} {baseline:7.2f} ms")
        slowest = max(medians.values())
        record(
            "portal_pages_sqlite",
            slowest,
            "ms",
            baseline,
            f"every main page rendered in ≤ {GOAL_MS:.0f} ms server-side on the demo data",
            pages=medians,
            requests=requests,
            members=members,
            within_goal=slowest <= GOAL_MS,
        )
        platform.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--members", type=int, default=200)
    arguments = parser.parse_args()
    main(arguments.requests, arguments.members)
