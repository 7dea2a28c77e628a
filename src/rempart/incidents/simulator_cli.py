"""``rempart simulate``: a month of legitimate traffic and four attackers against the real guard."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rempart.cli_support import err, out, print_json, reported_errors
from rempart.incidents.simulator import Options, SimulationReport, simulate


def simulate_command(
    days: Annotated[int, typer.Option(min=8, max=90, help="Simulated days.")] = 28,
    professionals: Annotated[
        int, typer.Option(min=11, max=2000, help="Practices, of every kind.")
    ] = 40,
    seed: Annotated[int, typer.Option(help="The same seed gives the same run.")] = 1,
    members: Annotated[
        int, typer.Option(min=500, max=500_000, help="Members (cards) of the two insurers.")
    ] = 5000,
    database_url: Annotated[
        str | None,
        typer.Option(help="An empty database to run on (default: a temporary SQLite file)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Play a month of rights checks by practices of every kind, and four attackers with stolen
    sessions, through the real rights check, quotas, detection, ledger and containment; report
    what each attacker exposed before it was stopped, and the false freezes. Exit 1 if a goal
    (at most 20 beneficiaries per stolen session, no false freeze) is missed."""
    options = Options(days, professionals, seed, members, database_url)
    with (
        reported_errors(),
        Progress(
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("days", total=days)
        report = simulate(options, lambda done, _: bar.update(task, completed=done))
    if as_json:
        print_json(as_data(report))
    else:
        _print(report)
    if not report.goals_met:
        raise typer.Exit(1)


def as_data(report: SimulationReport) -> dict[str, Any]:
    data = asdict(report)
    data["goals_met"] = report.goals_met
    return data


def _print(report: SimulationReport) -> None:
    legit, o = report.legitimate, report.options
    out.print(
        f"{o.days} days, {legit.practices} practices ({legit.accounts} accounts), "
        f"{legit.checks:,} legitimate rights checks, seed {o.seed}, {report.seconds} s"
    )
    table = Table(
        "attacker", "sessions", "requests", "exposed", "max/session", "detected by", "frozen"
    )
    for a in report.attackers:
        contained = (
            f"{a.contained}/{a.accounts} after {a.contained_after_seconds:.0f} s "
            f"({'; '.join(a.contained_by)})"
            if a.contained
            else "no"
        )
        table.add_row(
            a.name,
            str(a.accounts),
            str(a.requests),
            str(a.exposed),
            str(a.exposed_max_per_session),
            a.detected_by or "-",
            contained,
        )
    out.print(table)
    out.print(
        f"legitimate accounts: {legit.false_freezes} false freeze(s); "
        f"{legit.step_ups} step-up(s) of {legit.accounts_stepped_up} account(s); "
        f"{legit.throttled} software throttle(s); {legit.quota_refusals} quota refusal(s); "
        f"{legit.alerts} alert(s) on {legit.accounts_alerted} account(s)"
    )
    verdict = "met" if report.goals_met else "MISSED"
    out.print(
        f"goals ({report.goal_exposed} beneficiaries at most per stolen session, "
        f"no false freeze): {verdict}"
    )
