"""``rempart guard``: containment, from the operator's shell."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from rempart.cli_support import err, out, platform, print_json
from rempart.incidents import containment

guard = typer.Typer(
    help="Containment: freeze and unfreeze accounts, professionals, insurers, everything.",
    no_args_is_help=True,
)

Account = Annotated[
    str | None, typer.Option("--account", help="An account, by its e-mail address.")
]
ProfessionalOpt = Annotated[
    str | None,
    typer.Option(
        "--professional", help="A professional, by billing number (its people and its software)."
    ),
]
Insurer = Annotated[
    str | None, typer.Option("--amc-number", help="An insurer's data: rights checks and its staff.")
]
Everything = Annotated[
    bool,
    typer.Option("--platform", help="Everything but the operators' and security analysts' access."),
]


def _which(
    account: str | None, professional: str | None, amc_number: str | None, everything: bool
) -> tuple[str, str | None]:
    chosen = [
        (k, v)
        for k, v in (("account", account), ("professional", professional), ("tenant", amc_number))
        if v
    ]
    if len(chosen) + everything != 1:
        err.print("name exactly one of --account, --professional, --amc-number, --platform")
        raise typer.Exit(1)
    return chosen[0] if chosen else ("platform", None)


@guard.command("freeze")
def freeze(
    reason: Annotated[str, typer.Option(help="Why: kept in the record and shown to operators.")],
    account: Account = None,
    professional: ProfessionalOpt = None,
    amc_number: Insurer = None,
    everything: Everything = False,
) -> None:
    """Freeze at once; every request checks. Nothing is deleted: unfreeze lifts it."""
    kind, name = _which(account, professional, amc_number, everything)
    with platform() as p:
        view = containment.freeze(p, kind, name, reason, f"cli:{getpass.getuser()}")
    out.print(f"{view.label} frozen")


@guard.command("unfreeze")
def unfreeze(
    account: Account = None,
    professional: ProfessionalOpt = None,
    amc_number: Insurer = None,
    everything: Everything = False,
) -> None:
    """Lift a freeze (a frozen account's people sign in again: their sessions were ended)."""
    kind, name = _which(account, professional, amc_number, everything)
    with platform() as p:
        label = containment.unfreeze(p, kind, name, f"cli:{getpass.getuser()}")
    out.print(f"{label} unfrozen")


@guard.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The freezes in force."""
    with platform() as p:
        views = containment.in_force(p)
    if as_json:
        print_json(
            [
                {
                    "kind": v.kind,
                    "label": v.label,
                    "reason": v.reason,
                    "by": v.created_by,
                    "since": v.created_at,
                }
                for v in views
            ]
        )
        return
    if not views:
        out.print("nothing is frozen")
        return
    table = Table("what", "since", "by", "why")
    for v in views:
        table.add_row(v.label, v.created_at.isoformat(timespec="seconds"), v.created_by, v.reason)
    out.print(table)
