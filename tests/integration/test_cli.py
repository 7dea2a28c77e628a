"""The ``rempart`` command end to end, as an operator would type it, on each database."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rempart.cli import app
from rempart.identifiers import luhn_complete, make_french_iban
from rempart.settings import get_settings
from tests.support import AMC, BASE_PLAN, member_file, person

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REMPART_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REMPART_DATABASE_URL", database_url)
    monkeypatch.setenv("REMPART_ENV", "test")
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def rempart(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def ok(*args: str) -> str:
    code, output = rempart(*args)
    assert code == 0, output
    return output


@pytest.fixture
def ready(home: Path, tmp_path: Path) -> Path:
    ok("init")
    ok("tenants", "add", "--amc-number", AMC, "--name", "Mutuelle Test")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(BASE_PLAN))
    ok("plans", "load", "--amc-number", AMC, str(plan))
    return home


def test_init_creates_an_owner_only_master_key_and_is_idempotent(home: Path) -> None:
    assert "master key created" in ok("init")
    key = home / "master.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    assert "master key found" in ok("init")
    assert key.read_bytes() == before


def test_tenants_and_plans_are_listed(ready: Path) -> None:
    (tenant,) = json.loads(ok("tenants", "list", "--json"))
    assert (tenant["amc_number"], tenant["plans"], tenant["status"]) == (AMC, 1, "active")
    (plan,) = json.loads(ok("plans", "list", "--amc-number", AMC, "--json"))
    assert (plan["code"], plan["valid_from"]) == ("BASE", "2025-01-01")


def test_a_plan_with_problems_is_refused_with_each_location(ready: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**BASE_PLAN, "guarantees": {"OPTI": {"amount": 300}, "XXXX": {}}}))
    code, output = rempart("plans", "load", "--amc-number", AMC, str(bad))
    assert code == 1
    assert "guarantees.OPTI.amount" in output
    assert "guarantees.XXXX" in output
    code, output = rempart("plans", "check", str(bad))
    assert code == 1
    assert "guarantees.OPTI.amount" in output


def test_a_changed_plan_version_with_the_same_start_is_a_conflict(
    ready: Path, tmp_path: Path
) -> None:
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**BASE_PLAN, "name": "Base v2"}))
    code, output = rempart("plans", "load", "--amc-number", AMC, str(changed))
    assert code == 1
    assert "later valid_from" in output


def test_member_import_reports_counts_and_exit_status(ready: Path, tmp_path: Path) -> None:
    people = [person(n) for n in range(1, 31)]
    good = tmp_path / "members.csv"
    good.write_bytes(member_file(people))
    report = json.loads(ok("members", "import", "--amc-number", AMC, str(good), "--json"))
    assert (report["committed"], report["inserted"], report["rejected"]) == (True, 30, 0)

    people[4] = people[4].but(nir=people[4].nir[:13] + "00")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(member_file(people))
    code, output = rempart("members", "import", "--amc-number", AMC, str(bad))
    assert code == 1
    assert "refused: nothing was changed" in output
    assert "line 6, nir: the key does not match" in output
    assert people[4].nir not in output
    assert people[4].last_name not in output

    code, output = rempart(
        "members", "import", "--amc-number", AMC, str(bad), "--partial", "--json"
    )
    assert code == 3
    report = json.loads(output)
    assert (report["committed"], report["rejected"], report["unchanged"]) == (True, 1, 29)
    assert Path(report["quarantine_file"]).exists()


def test_professionals_are_imported_all_or_nothing(ready: Path, tmp_path: Path) -> None:
    iban = make_french_iban("30004", "00001", "12345678901")
    rows = [
        f"751234567,{luhn_complete('1000000001')},,Pharmacie,pharmacist,false,{iban},BNPAFRPPXXX,",
        f"751234568,,750712184,Centre hospitalier,hospital,false,{iban},BNPAFRPPXXX,",
    ]
    header = "am_number,rpps,finess,name,profession,optam,iban,bic,networks"
    file = tmp_path / "pros.csv"
    file.write_text("\n".join([header, *rows, "75123456,,,X,gp,false,FR00,BNPAFRPPXXX,"]) + "\n")
    code, output = rempart("professionals", "import", str(file))
    assert code == 1
    assert "line 4, am_number" in output
    file.write_text("\n".join([header, *rows]) + "\n")
    assert "inserted 2" in ok("professionals", "import", str(file))
    assert "unchanged 2" in ok("professionals", "import", str(file))
    file.write_text(
        "\n".join([header, rows[0].replace("BNPAFRPPXXX", "SOGEFRPPXXX"), rows[1]]) + "\n"
    )
    code, output = rempart("professionals", "import", str(file))
    assert code == 1
    assert "line 2, bic: differs from the account on file" in output


def test_keys_rotate_and_shred(ready: Path, tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_bytes(member_file([person(n) for n in range(1, 6)]))
    ok("members", "import", "--amc-number", AMC, str(members))
    assert "master key rotated" in ok("keys", "rotate", "--master")
    output = ok("keys", "rotate", "--data", "--amc-number", AMC)
    assert "10 rows re-sealed" in output  # 5 beneficiaries and 5 members
    code, output = rempart("keys", "rotate", "--data")
    assert code == 1
    assert "exactly one of" in output
    code, output = rempart("tenants", "shred", "--amc-number", AMC)
    assert code == 1
    assert "--yes" in output
    assert "shredded" in ok("tenants", "shred", "--amc-number", AMC, "--yes")
    code, output = rempart("members", "import", "--amc-number", AMC, str(members))
    assert code == 1
    assert "no active insurer" in output


def test_production_refuses_the_default_key_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMPART_ENV", "production")
    get_settings.cache_clear()
    code, output = rempart("init")
    assert code == 1
    assert "REMPART_MASTER_KEY_FILE must be set in production" in output
    assert not (home / "master.key").exists()


def test_a_key_file_readable_by_others_is_refused(home: Path) -> None:
    ok("init")
    (home / "master.key").chmod(0o644)
    code, output = rempart("tenants", "list")
    assert code == 1
    assert "chmod 600" in output


def test_demo_data_is_loaded_once_with_if_empty(home: Path) -> None:
    ok("init")
    output = ok("demo-data", "--members", "20", "--seed", "3")
    assert "insurer 75000001" in output
    assert "already holds insurers" in ok("demo-data", "--if-empty")
    tenants = json.loads(ok("tenants", "list", "--json"))
    assert sum(t["members"] for t in tenants) == 20
