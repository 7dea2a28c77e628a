"""``rempart integrity``: prove that no business row was altered outside the application."""

from __future__ import annotations

from typing import Annotated

import typer

from rempart.cli_support import byte_progress, out, platform, print_json
from rempart.integrity.verify import verify_integrity

integrity = typer.Typer(
    help="Integrity of the business rows (row MACs, journal, ledger).", no_args_is_help=True
)


@integrity.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Check the ledger, the journal of writes against the ledger, and every business row
    against its MAC and the journal.

    Exit status 0 when intact; 1 when a row or journal block was modified, deleted or inserted
    outside the application, or the ledger was altered (each problem is named).
    """
    with platform() as p, byte_progress(0, "verifying") as bar:
        task = bar.add_task("verify", total=None)
        report = verify_integrity(
            p, lambda done, total: bar.update(task, completed=done, total=total)
        )
    problems = [f"ledger: {problem}" for problem in report.ledger.problems] + report.problems
    if as_json:
        print_json(
            {
                "intact": report.intact,
                "ledger_size": report.ledger.size,
                "journal_blocks": report.blocks,
                "tables": [
                    {"table": t.name, "rows": t.rows, "commitment": t.commitment}
                    for t in report.tables
                ],
                "problems": problems,
            }
        )
    elif report.intact:
        rows = sum(t.rows for t in report.tables)
        out.print(
            f"integrity intact: {rows} rows in {len(report.tables)} tables match their MACs and "
            f"the journal ({report.blocks} blocks), anchored in a verified ledger of "
            f"{report.ledger.size} entries"
        )
    else:
        out.print(f"[bold red]integrity broken[/]: {len(problems)} problems")
        for problem in problems:
            out.print(f"  - {problem}", highlight=False)
    if not report.intact:
        raise typer.Exit(1)
