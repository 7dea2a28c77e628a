"""``rempart demo-data``: write the demo files and load them through the real imports."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Annotated

import typer

from rempart.cli_support import out, platform
from rempart.errors import Conflict, InvalidInput
from rempart.registry import services
from rempart.registry.demo import TENANTS, demo_files
from rempart.registry.member_import import ImportOptions, import_members


def demo_data(
    members: Annotated[
        int, typer.Option(min=1, max=2_000_000, help="Members (cards) to make.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="The same seed gives the same data.")] = 1,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Also write the files here (they hold synthetic personal data)."
        ),
    ] = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing if any insurer exists.")
    ] = False,
) -> None:
    """Load synthetic insurers, plans, members and professionals (Faker fr_FR, valid numbers)."""
    if if_empty:
        with platform() as p:
            if services.list_tenants(p):
                out.print("the database already holds insurers: demo data not loaded")
                return
    files = demo_files(members, seed)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        for i, plan in enumerate(files.plans):
            (out_dir / f"plan-{i + 1}.json").write_bytes(plan)
        (out_dir / "professionals.csv").write_bytes(files.professionals)
        for amc, data in files.members.items():
            (out_dir / f"members-{amc}.csv").write_bytes(data)
        out.print(f"demo files written to {out_dir}")
    with platform() as p:
        for amc, name in TENANTS:
            with contextlib.suppress(Conflict):  # loading the demo twice updates it
                services.add_tenant(p, amc, name)
            for plan in files.plans:
                services.load_plan(p, amc, plan)
        report = services.import_professionals(p, io.BytesIO(files.professionals))
        if report.errors:
            raise InvalidInput(f"demo professionals rejected: {report.errors[0].reason}")
        for amc, data in files.members.items():
            result = import_members(p, amc, io.BytesIO(data), ImportOptions())
            out.print(
                f"insurer {amc}: {result.inserted} beneficiaries added, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.closed} closed"
            )
            if not result.committed:
                raise InvalidInput(f"demo member file rejected: {result.errors[0]}")
    out.print(
        f"professionals: {report.inserted} added, {report.updated + report.unchanged} already there"
    )
