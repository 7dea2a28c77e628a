"""``rempart guard baselines`` and ``rempart guard alerts``: the detection's nightly learning,
and what it found."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

import typer
from rich.table import Table

from rempart.cli_support import out, platform, print_json
from rempart.db import utcnow
from rempart.guard.baselines import update_baselines
from rempart.guard.detection import alerts_since


def baselines(
    through: Annotated[
        str | None,
        typer.Option(help="Learn up to this Paris day (YYYY-MM-DD); default: yesterday."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Learn what is normal for each account and practice from the ledger (run it nightly)."""
    with platform() as p:
        report = update_baselines(p, date.fromisoformat(through) if through else None)
    summary = {
        "through": report.through,
        "days_learnt": [d.isoformat() for d in report.days],
        "accounts": report.accounts,
        "practices": report.practices,
        "alerts": report.alerts,
    }
    if as_json:
        print_json(summary)
        return
    learnt = f"{len(report.days)} day(s) learnt" if report.days else "nothing new to learn"
    out.print(
        f"baselines through {report.through}: {learnt}; {report.accounts} accounts, "
        f"{report.practices} practices; {report.alerts} alert(s) for unbilled rights checks"
    )


def alerts(
    hours: Annotated[int, typer.Option(min=1, help="How far back, in hours.")] = 24,
    as_json: Annotated[bool, typer.Option("--json", help="The alerts as JSON.")] = False,
) -> None:
    """The detection's alerts: who, which signals beyond which bounds, what it answered."""
    with platform() as p:
        rows = alerts_since(p.sessions, utcnow() - timedelta(hours=hours))
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"no alert in the last {hours} hour(s)")
        return
    table = Table("at", "actor", "practice", "response", "reason")
    for row in rows:
        table.add_row(
            str(row["at"])[:19],
            str(row["actor"]),
            str(row["organisation"] or ""),
            str(row["response"]),
            str(row["reason"]),
        )
    out.print(table)
