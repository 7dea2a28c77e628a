"""``rempart guard``: containment; ``rempart incident``: scoping and notification packs."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rempart.cli_support import err, out, platform, print_json, reported_errors
from rempart.incidents import containment
from rempart.incidents import notify as notification
from rempart.incidents import scope as scoping

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


PortalOpt = Annotated[
    str | None,
    typer.Option("--portal", help="One web portal's pages (pro, amc or ops); the API goes on."),
]


def _which(
    account: str | None,
    professional: str | None,
    amc_number: str | None,
    portal: str | None,
    everything: bool,
) -> tuple[str, str | None]:
    named = (
        ("account", account),
        ("professional", professional),
        ("tenant", amc_number),
        ("portal", portal),
    )
    chosen = [(k, v) for k, v in named if v]
    if len(chosen) + everything != 1:
        err.print(
            "name exactly one of --account, --professional, --amc-number, --portal, --platform"
        )
        raise typer.Exit(1)
    return chosen[0] if chosen else ("platform", None)


@guard.command("freeze")
def freeze(
    reason: Annotated[str, typer.Option(help="Why: kept in the record and shown to operators.")],
    account: Account = None,
    professional: ProfessionalOpt = None,
    amc_number: Insurer = None,
    portal: PortalOpt = None,
    everything: Everything = False,
) -> None:
    """Freeze at once; every request checks. Nothing is deleted: unfreeze lifts it."""
    kind, name = _which(account, professional, amc_number, portal, everything)
    with platform() as p:
        view = containment.freeze(p, kind, name, reason, f"cli:{getpass.getuser()}")
    out.print(f"{view.label} frozen")


@guard.command("unfreeze")
def unfreeze(
    account: Account = None,
    professional: ProfessionalOpt = None,
    amc_number: Insurer = None,
    portal: PortalOpt = None,
    everything: Everything = False,
) -> None:
    """Lift a freeze (a frozen account's people sign in again: their sessions were ended)."""
    kind, name = _which(account, professional, amc_number, portal, everything)
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


@guard.command("reenrol")
def reenrol(
    accounts: Annotated[
        list[str], typer.Option("--account", help="An account's e-mail address (repeatable).")
    ],
    reason: Annotated[str, typer.Option(help="Why: kept in the record.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Erase accounts' credentials (password, second factors, sessions, software they
    registered) and print a new one-time enrolment code for each, to hand over out of band."""
    with platform() as p:
        done = containment.force_reenrolment(p, accounts, reason, f"cli:{getpass.getuser()}")
    if as_json:
        print_json([{"account": r.label, "enrolment_code": r.enrolment_code} for r in done])
        return
    for r in done:
        out.print(f"{r.label}: enrolment code {r.enrolment_code} (valid once)", highlight=False)


incident = typer.Typer(
    help="Incident response: the exact people read, per insurer; the notification packs.",
    no_args_is_help=True,
)

Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary.")]
Kept = Annotated[
    list[Path] | None,
    typer.Option(
        "--checkpoint",
        help="A checkpoint note an insurer kept: the log must still give its root. Repeatable.",
        exists=True,
        dir_okay=False,
    ),
]


def _notes(paths: list[Path] | None) -> list[str]:
    return [path.read_text() for path in paths or []]


@incident.command("scope")
def scope(
    out_dir: Annotated[Path, typer.Option("--out", help="A new folder for the scope.")],
    since: Annotated[
        str,
        typer.Option(
            "--from", help="From this time, included (ISO 8601, UTC unless it has an offset)."
        ),
    ],
    until: Annotated[str, typer.Option("--to", help="Up to this time (ISO 8601), excluded.")],
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account",
            help="An abused account: e-mail address, user id, user:<id> or client:<id>. "
            "Repeatable.",
        ),
    ] = None,
    professional: Annotated[
        list[str] | None,
        typer.Option(
            "--professional",
            help="A professional's billing number: all its accounts and software. Repeatable.",
        ),
    ] = None,
    ip: Annotated[
        list[str] | None,
        typer.Option("--ip", help="An address or CIDR block (IPv4, IPv6). Repeatable."),
    ] = None,
    checkpoint: Kept = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Write the scope even if the ledger does not verify (problems kept)."
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """The people read by the accounts, professionals or addresses named, per insurer, with the
    fields disclosed and when; the ledger is verified over the window first.

    Writes one CSV and one Parquet file per insurer and scope.json (criteria, verification,
    checkpoint cited, counts). Exit status 1 when the ledger over the window does not verify:
    no scope is written then, unless --force.
    """
    with reported_errors():
        window = (scoping.parse_time(since, "from"), scoping.parse_time(until, "to"))
    with platform() as p, _progress() as bar:
        criteria = scoping.resolve_criteria(
            p, *window, accounts=account or (), professionals=professional or (), ips=ip or ()
        )
        task = bar.add_task("verifying the window", total=None)
        result = scoping.scope(
            p,
            criteria,
            out_dir,
            _notes(checkpoint),
            force,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(result.describe())
    else:
        _print_scope(result)
    if not result.window.intact:
        raise typer.Exit(1)


def _print_scope(result: scoping.ScopeResult) -> None:
    window = result.window
    if window.intact:
        cited = window.checkpoint
        out.print(
            f"ledger verified over the window: entries {window.first_seq} to {window.last_seq}"
            + (f", checkpoint of size {cited.size} cited" if cited else ""),
            highlight=False,
        )
    else:
        out.print(f"[bold red]the ledger over the window does not verify[/]: {result.status}")
        for problem in window.problems:
            out.print(f"  - {problem}", highlight=False)
        if result.status == "refused":
            out.print(
                f"no scope written: the problems are in {result.out / scoping.SCOPE_FILE}; "
                "--force writes the scope anyway, with them",
                highlight=False,
            )
            return
    table = Table("AMC", "people", "reads", "fields", "first read", "last read")
    for a in result.amcs:
        table.add_row(
            a.amc,
            str(a.people),
            str(a.reads),
            ", ".join(a.fields),
            a.first_read.isoformat(timespec="seconds") if a.first_read else "",
            a.last_read.isoformat(timespec="seconds") if a.last_read else "",
        )
    out.print(table)
    out.print(
        f"{result.people} people read ({result.reads} reads) across {len(result.amcs)} "
        f"insurers; scope written to {result.out}",
        highlight=False,
    )


@incident.command("notify")
def notify(
    scope_dir: Annotated[
        Path,
        typer.Option(
            "--scope",
            help="The folder written by `rempart incident scope`.",
            exists=True,
            file_okay=False,
        ),
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="A new folder (default: SCOPE/notification).")
    ] = None,
    contact: Annotated[
        str | None,
        typer.Option("--contact", help="The operator's contact point, written in the drafts."),
    ] = None,
    checkpoint: Kept = None,
    force: Annotated[
        bool, typer.Option("--force", help="Notify from a scope that was forced.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Per insurer: the GDPR art. 33 draft for the CNIL, the art. 34 letters to the people read
    (PDF), and an integrity attestation.

    Reading the people's identities for the letters is recorded in the ledger. Exit status 1
    when the ledger or a business row does not verify (the attestation says what).
    """
    with platform() as p:
        result = notification.notify(
            p,
            scope_dir,
            out_dir,
            actor=f"cli:{getpass.getuser()}",
            contact=contact,
            external=_notes(checkpoint),
            force=force,
            progress=lambda message: err.print(message, highlight=False),
        )
    summary: dict[str, Any] = result.describe()
    if as_json:
        print_json(summary)
    else:
        table = Table("AMC", "insurer", "people", "letters", "not found", "files")
        for pack in result.packs:
            table.add_row(
                pack.amc,
                pack.name,
                str(pack.people),
                str(pack.letters),
                str(pack.unresolved),
                ", ".join(pack.files),
            )
        out.print(table)
        verdict = "[green]intact[/]" if result.intact else "[bold red]NOT intact[/]"
        out.print(f"ledger and business rows: {verdict}; pack written to {result.out}")
        for problem in result.problems:
            out.print(f"  - {problem}", highlight=False)
    if not result.intact:
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
