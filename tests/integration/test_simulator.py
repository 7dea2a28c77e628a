"""The attack simulator: a seeded month meets the goals of SECURITY.md requirement 6, and the
command reports it as JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rempart.cli import app as cli_app
from rempart.incidents.simulator import GOAL_EXPOSED, Options, SimulationReport, simulate
from rempart.incidents.traffic import KINDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report() -> SimulationReport:
    return simulate(Options(days=12, professionals=16, members=1500, seed=3))


def test_every_stolen_session_is_stopped_within_twenty_beneficiaries(
    report: SimulationReport,
) -> None:
    assert [a.name for a in report.attackers] == ["bulk", "slow", "parallel", "enumerator"]
    for attacker in report.attackers:
        assert attacker.exposed_max_per_session <= GOAL_EXPOSED, attacker
        assert attacker.contained == attacker.accounts, attacker  # every session frozen
        assert attacker.contained_by, attacker
    parallel = report.attackers[2]
    assert parallel.accounts == 8
    assert parallel.exposed <= 8 * GOAL_EXPOSED


def test_no_legitimate_account_is_frozen(report: SimulationReport) -> None:
    assert report.legitimate.false_freezes == 0
    assert report.goals_met


def test_the_month_is_played_by_every_kind_of_practice(report: SimulationReport) -> None:
    legit = report.legitimate
    assert set(legit.by_profession) == set(KINDS)
    assert legit.checks > 5000
    assert 0 < legit.misses < legit.checks * 0.05  # mistyped cards: about 2 %
    assert sum(legit.by_profession.values()) == legit.checks


TINY = Options(days=8, professionals=11, members=600, seed=2)


def test_the_same_seed_gives_the_same_run() -> None:
    first, again = simulate(TINY), simulate(TINY)
    assert again.legitimate == first.legitimate
    assert again.attackers == first.attackers


def test_the_command_reports_as_json() -> None:
    args = ["simulate", "--days", "8", "--professionals", "11", "--members", "600", "--seed", "2"]
    result = CliRunner().invoke(cli_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["goals_met"] is True
    assert data["options"]["days"] == 8
    assert data["legitimate"]["false_freezes"] == 0
    assert {a["name"] for a in data["attackers"]} == {"bulk", "slow", "parallel", "enumerator"}
    assert all(a["exposed_max_per_session"] <= 20 for a in data["attackers"])
