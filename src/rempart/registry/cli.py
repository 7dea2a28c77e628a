"""Commands of the registry: insurers, plans, members, professionals, keys, demo data."""

from __future__ import annotations

import dataclasses
import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rempart.cli_support import byte_progress, err, out, platform, print_json, reported_errors
from rempart.errors import InvalidDocument, InvalidInput
from rempart.registry import services
from rempart.registry.member_import import ImportOptions, ImportReport, import_members

tenants = typer.Typer(
    help="Insurers (AMCs): each is a tenant with its own keys.", no_args_is_help=True
)
plans = typer.Typer(help="Plans: what an insurer pays, per care domain.", no_args_is_help=True)
members = typer.Typer(
    help="Member files: who is covered, by which plan, when.", no_args_is_help=True
)
professionals = typer.Typer(
    help="Health professionals and facilities under convention.", no_args_is_help=True
)
keys = typer.Typer(help="Key management: master key and data key rotation.", no_args_is_help=True)

AmcNumber = Annotated[str, typer.Option("--amc-number", help="The insurer's AMC number.")]
PARTIAL_EXIT = 3  # 2 is the exit status of a usage error
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of text.")]


def _readable(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInput(f"{path} is not a readable file", field="file")
    return path


@tenants.command("add")
def tenants_add(
    amc_number: AmcNumber, name: Annotated[str, typer.Option(help="Display name.")]
) -> None:
    """Register an insurer and create its data keys."""
    with platform() as p:
        view = services.add_tenant(p, amc_number, name)
    out.print(f"insurer {view.amc_number} ({view.name}) added, with its own data and index keys")


@tenants.command("list")
def tenants_list(as_json: JsonFlag = False) -> None:
    """List the insurers with their counts."""
    with platform() as p:
        views = services.list_tenants(p)
    if as_json:
        print_json([dataclasses.asdict(v) for v in views])
        return
    table = Table("AMC number", "name", "status", "members", "beneficiaries", "plan versions")
    for v in views:
        table.add_row(
            v.amc_number, v.name, v.status, str(v.members), str(v.beneficiaries), str(v.plans)
        )
    out.print(table)


@tenants.command("shred")
def tenants_shred(
    amc_number: AmcNumber,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Crypto-shred an insurer: destroy its keys; its members' data becomes unreadable forever."""
    if not yes:
        err.print("shredding cannot be undone: run again with --yes to confirm")
        raise typer.Exit(1)
    with platform() as p:
        destroyed = services.shred_tenant(p, amc_number, f"cli:{getpass.getuser()}")
    out.print(f"insurer {amc_number} shredded: {destroyed} keys destroyed")


@plans.command("load")
def plans_load(
    amc_number: AmcNumber, file: Annotated[Path, typer.Argument(help="The plan, as JSON.")]
) -> None:
    """Load a plan version (validated; versions are told apart by valid_from)."""
    with platform() as p:
        view = services.load_plan(p, amc_number, _readable(file).read_bytes())
    if view.loaded:
        out.print(f"plan {view.code} valid from {view.valid_from} loaded for insurer {amc_number}")
    else:
        out.print(
            f"plan {view.code} valid from {view.valid_from} was already loaded: nothing changed"
        )


@plans.command("check")
def plans_check(file: Annotated[Path, typer.Argument(help="The plan, as JSON.")]) -> None:
    """Validate a plan file without loading it."""
    with reported_errors():
        problems = services.plan_problems(_readable(file).read_bytes())
        if problems:
            raise InvalidDocument("the plan file is not valid", problems)
    out.print("the plan file is valid")


@plans.command("list")
def plans_list(amc_number: AmcNumber, as_json: JsonFlag = False) -> None:
    """List an insurer's plan versions."""
    with platform() as p:
        views = services.list_plans(p, amc_number)
    if as_json:
        print_json([dataclasses.asdict(v) for v in views])
        return
    table = Table("code", "name", "valid from", "valid to")
    for v in views:
        table.add_row(v.code, v.name, str(v.valid_from), str(v.valid_to or "open"))
    out.print(table)


@members.command("import")
def members_import(
    amc_number: AmcNumber,
    file: Annotated[Path, typer.Argument(help="The member file (CSV, UTF-8, header row).")],
    delta: Annotated[
        bool, typer.Option(help="A delta file: add and update only, close nobody.")
    ] = False,
    partial: Annotated[
        bool, typer.Option(help="Commit the valid rows; set the others aside in a quarantine file.")
    ] = False,
    effective_date: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Full import: absent beneficiaries' rights end the day before (default today).",
        ),
    ] = None,
    errors: Annotated[
        Path | None, typer.Option(help="Where to write the error report (CSV).")
    ] = None,
    quarantine: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (--partial).")
    ] = None,
    allow_mass_closure: Annotated[
        bool, typer.Option(help="Let a full file close more than half of the insurer's people.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import a member file: validated, encrypted, all or nothing unless --partial.

    Exit status: 0 imported, 1 refused (nothing changed), 3 imported with rows set aside.
    """
    with platform() as p:
        _readable(file)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        folder = p.settings.home / "imports"
        options = ImportOptions(
            delta=delta,
            partial=partial,
            effective_date=effective_date.date() if effective_date else None,
            allow_mass_closure=allow_mass_closure,
            errors_path=errors or folder / f"{stamp}-{amc_number}-errors.csv",
            quarantine_path=quarantine or folder / f"{stamp}-{amc_number}-quarantine.csv",
        )
        size = file.stat().st_size
        with byte_progress(size, "importing") as bar, file.open("rb") as stream:
            task = bar.add_task("import", total=size)
            options.progress = lambda done: bar.update(task, completed=done)
            report = import_members(p, amc_number, stream, options)
    _print_import(report, as_json)
    if not report.committed:
        raise typer.Exit(1)
    if report.rejected:
        raise typer.Exit(PARTIAL_EXIT)


def _print_import(report: ImportReport, as_json: bool) -> None:
    counts = {
        k: getattr(report, k)
        for k in ("rows", "inserted", "updated", "unchanged", "closed", "rejected")
    }
    if as_json:
        print_json(
            {
                "import_id": report.import_id,
                "mode": report.mode,
                "committed": report.committed,
                **counts,
                "errors": [dataclasses.asdict(e) | {"raw": None} for e in report.errors],
                "errors_file": report.errors_path,
                "quarantine_file": report.quarantine_path,
            }
        )
        return
    verdict = "imported" if report.committed else "[bold red]refused: nothing was changed[/]"
    out.print(f"{report.mode} import {verdict}")
    out.print(", ".join(f"{k} {v}" for k, v in counts.items()))
    if report.rejected:
        where = f" (the full list: {report.errors_path})" if report.errors_path else ""
        out.print(f"rejected rows: {report.rejected}{where}")
        for e in report.errors[:20]:
            out.print(
                f"  line {e.line}{', ' + e.column if e.column else ''}: {e.reason}", highlight=False
            )
        if report.quarantine_path:
            out.print(f"rejected rows set aside in {report.quarantine_path} (owner-only file)")


@professionals.command("import")
def professionals_import(
    file: Annotated[
        Path, typer.Argument(help="am_number,rpps,finess,name,profession,optam,iban,bic,networks")
    ],
) -> None:
    """Create or update professionals; all or nothing."""
    with platform() as p, _readable(file).open("rb") as stream:
        report = services.import_professionals(p, stream)
    if report.errors:
        out.print(f"[bold red]refused: nothing was changed[/] ({len(report.errors)} rows rejected)")
        for e in report.errors[:50]:
            out.print(
                f"  line {e.line}{', ' + e.column if e.column else ''}: {e.reason}", highlight=False
            )
        raise typer.Exit(1)
    out.print(
        f"professionals: inserted {report.inserted}, updated {report.updated}, "
        f"unchanged {report.unchanged}"
    )


@keys.command("rotate")
def keys_rotate(
    master: Annotated[
        bool, typer.Option("--master", help="Re-wrap every data key under a new master key.")
    ] = False,
    data: Annotated[
        bool, typer.Option("--data", help="Move a scope to a new data key, re-sealing its rows.")
    ] = False,
    amc_number: Annotated[
        str | None, typer.Option("--amc-number", help="With --data: the insurer.")
    ] = None,
    platform_scope: Annotated[
        bool,
        typer.Option("--platform", help="With --data: the platform's own data (bank details)."),
    ] = False,
) -> None:
    """Rotate keys without downtime: --master, or --data with --amc-number N or --platform."""
    if master == data or (data and (amc_number is None) == (not platform_scope)):
        err.print("give --master, or --data with exactly one of --amc-number N and --platform")
        raise typer.Exit(1)
    with platform() as p:
        if master:
            count = services.rotate_master_key(p, f"cli:{getpass.getuser()}")
            out.print(
                f"master key rotated: {count} data keys re-wrapped, the old master key forgotten"
            )
            return
        with byte_progress(0, "re-sealing") as bar:
            task = bar.add_task("reseal", total=None)
            count = services.rotate_data_key(
                p,
                amc_number,
                lambda done, total: bar.update(task, completed=done, total=total),
                f"cli:{getpass.getuser()}",
            )
    out.print(f"data key rotated: {count} rows re-sealed under the new key, the old key destroyed")
