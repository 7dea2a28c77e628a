"""Commands of claims: invoice files from billing concentrators."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rempart.claims.ingest import BATCH, IngestReport, ingest
from rempart.cli_support import byte_progress, err, out, platform, print_json
from rempart.errors import InvalidInput
from rempart.registry.plan_format import format_money

invoices_cli = typer.Typer(
    help="Invoices (DRE): files of invoices from billing concentrators.", no_args_is_help=True
)
PARTIAL_EXIT = 3  # as `members import`: done, with lines set aside
SHOWN_ERRORS = 50


@invoices_cli.command("ingest")
def invoices_ingest(
    file: Annotated[Path, typer.Argument(help="One invoice per line (JSON Lines, UTF-8).")],
    batch_size: Annotated[
        int, typer.Option(min=1, max=5000, help="Invoices per transaction.")
    ] = BATCH,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Adjudicate and book a file of invoices; report them by status and reject code.

    Exit status: 0 every line ingested, 3 some lines malformed or refused (each named by its
    number; the others are ingested), 1 nothing could be done.
    """
    with platform() as p:
        if not file.is_file():
            raise InvalidInput(f"{file} is not a readable file", field="file")
        size = file.stat().st_size
        with byte_progress(size, "ingesting") as bar, file.open("rb") as stream:
            task = bar.add_task("ingest", total=size)
            report = ingest(
                p,
                stream,
                actor=f"cli:{getpass.getuser()}",
                batch_size=batch_size,
                progress=lambda done: bar.update(task, completed=done),
            )
    _print(report, as_json)
    if report.errors:
        raise typer.Exit(PARTIAL_EXIT)


def _print(report: IngestReport, as_json: bool) -> None:
    s = report.summary
    if as_json:
        print_json(
            {
                "lines": report.lines,
                "accepted": s.accepted,
                "partial": s.partial,
                "rejected": s.rejected,
                "replayed": s.replayed,
                "refused": s.refused,
                "malformed": report.malformed,
                "total_amc": format_money(s.total_amc),
                "reject_codes": dict(sorted(s.reject_codes.items())),
                "errors": [
                    {"line": e.line, "field": e.field, "reason": e.reason} for e in report.errors
                ],
            }
        )
        return
    out.print(
        f"{report.lines} invoices read: accepted {s.accepted}, partial {s.partial}, "
        f"rejected {s.rejected}, replayed {s.replayed}; refused {s.refused}, "
        f"malformed {report.malformed}"
    )
    out.print(f"the insurers pay {format_money(s.total_amc)} on the invoices taken")
    if s.reject_codes:
        table = Table("reject code", "lines")
        for code, lines in sorted(s.reject_codes.items()):
            table.add_row(code, str(lines))
        out.print(table)
    for e in report.errors[:SHOWN_ERRORS]:
        where = f" ({e.field})" if e.field else ""
        err.print(f"line {e.line}{where}: {e.reason}", highlight=False)
    if len(report.errors) > SHOWN_ERRORS:
        err.print(f"… and {len(report.errors) - SHOWN_ERRORS} more (--json lists them all)")
