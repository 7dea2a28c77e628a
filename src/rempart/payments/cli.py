"""``rempart payments``: runs, remittances, insurers' mandates, the bank-details letters."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from rempart.cli_support import err, out, platform, print_json, reported_errors
from rempart.payments import bank_details, documents, remittance, runs, statements
from rempart.registry.plan_format import format_money

payments = typer.Typer(
    help="Payment runs (SEPA transfers and debits), remittances, settlements, bank details.",
    no_args_is_help=True,
)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@payments.command("run")
def run(
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="Pay what was invoiced up to this day."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the files (default REMPART_HOME/payments)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Finish an unfinished run, then pay every accepted, unpaid invoice up to the cut-off.

    Exit 0 when done; 3 when invoices were refused because their stored rows fail their
    integrity check (they wait; see `rempart integrity verify`)."""
    with platform() as p:
        outcome = runs.run_payments(p, day.date() if day else None, out_dir, _actor())
    report = _outcome(outcome)
    if as_json:
        print_json(report)
    else:
        for resumed in outcome.resumed:
            out.print(f"finished run {resumed.reference}, left unfinished by an interruption")
        if outcome.run is None:
            out.print("nothing new to pay: no accepted invoice is waiting")
        else:
            _print_run(outcome.run, outcome.folder)
        for held in outcome.held:
            err.print(
                f"[yellow]held[/] {held.am_number}: {held.reason}"
                + (f" (until {held.until:%Y-%m-%d %H:%M} UTC)" if held.until else "")
                + f"; {held.invoices} invoices, {format_money(held.amount)} EUR wait",
                highlight=False,
            )
        for problem in outcome.problems:
            err.print(f"[bold red]refused[/] {problem}", highlight=False)
    if outcome.problems:
        raise typer.Exit(3)


def _print_run(view: runs.RunView, folder: Path | None) -> None:
    out.print(
        f"run {view.reference} ({view.status}): {view.invoices} invoices, {view.lines} lines; "
        f"{view.transfers} transfers for {format_money(view.transfer_total)} EUR on "
        f"{view.execution_date}; {view.debits} debits for {format_money(view.debit_total)} EUR "
        f"on {view.collection_date}",
        highlight=False,
    )
    for amc, claims, amount in view.by_insurer:
        out.print(f"  insurer {amc}: {claims} claims, {format_money(amount)} EUR", highlight=False)
    if folder is not None:
        out.print(f"files in {folder / view.reference}", highlight=False)


def _outcome(outcome: runs.RunOutcome) -> dict[str, Any]:
    return {
        "resumed": [_run_json(r) for r in outcome.resumed],
        "run": _run_json(outcome.run) if outcome.run else None,
        "held": [h.doc() for h in outcome.held],
        "refused": list(outcome.problems),
        "folder": str(outcome.folder / outcome.run.reference)
        if outcome.run and outcome.folder
        else None,
    }


def _run_json(view: runs.RunView) -> dict[str, Any]:
    return {
        "id": str(view.id),
        "reference": view.reference,
        "status": view.status,
        "date": view.run_date.isoformat(),
        "cutoff": view.cutoff.isoformat(),
        "execution_date": view.execution_date.isoformat(),
        "collection_date": view.collection_date.isoformat(),
        "invoices": view.invoices,
        "lines": view.lines,
        "transfers": view.transfers,
        "transfer_total": format_money(view.transfer_total),
        "debits": view.debits,
        "debit_total": format_money(view.debit_total),
        "by_insurer": [
            {"amc_number": a, "claims": n, "amount": format_money(m)} for a, n, m in view.by_insurer
        ],
        "held": [h.doc() for h in view.held],
        "files": dict(view.files),
    }


@payments.command("runs")
def list_runs(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The payment runs, newest first."""
    with platform() as p:
        found = runs.list_runs(p)
    if as_json:
        print_json([_run_json(view) for view in found])
        return
    for view in found:
        _print_run(view, None)


@payments.command("files")
def files(
    run_number: Annotated[int, typer.Option("--run", help="The run's number (RMP000012: 12).")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write them (default REMPART_HOME/payments)."),
    ] = None,
) -> None:
    """Write a finished run's files again, identical to the byte (after a disk loss, or to hand
    them over from elsewhere); they are checked against the digests the run recorded."""
    with platform() as p:
        folder = out_dir or p.settings.resolved_payments_dir
        view = runs.rewrite_files(p, run_number, folder)
    out.print(f"files of run {view.reference} written again in {folder / view.reference}")


@payments.command("remittance")
def show_remittance(
    run_number: Annotated[int, typer.Option("--run", help="The run's number (RMP000012: 12).")],
    am_number: Annotated[str, typer.Option("--am-number", help="The professional.")],
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Write the advice as a PDF to this file.")
    ] = None,
) -> None:
    """A professional's remittance advice in a run: JSON on stdout, or a PDF."""
    with platform() as p:
        doc = remittance.remittance_for(p, run_number, am_number)
    if pdf is None:
        out.print(documents.encode(doc).decode(), end="", highlight=False, soft_wrap=True)
        return
    with reported_errors():
        pdf.write_bytes(remittance.render_pdf(doc))
    out.print(f"remittance advice written to {pdf}", highlight=False)


@payments.command("mandate")
def mandate(
    amc_number: Annotated[str, typer.Option("--amc-number", help="The insurer.")],
    mandate_id: Annotated[str, typer.Option("--mandate-id", help="The mandate's reference.")],
    signed_on: Annotated[
        datetime, typer.Option("--signed-on", formats=["%Y-%m-%d"], help="Its signature date.")
    ],
    iban: Annotated[str, typer.Option("--iban", help="The insurer's account to debit.")],
    bic: Annotated[str, typer.Option("--bic", help="Its bank's BIC.")],
) -> None:
    """Record an insurer's SEPA direct-debit mandate: its settlements are then collected by
    direct debit (without one, they are invoiced)."""
    with platform() as p:
        view = statements.set_mandate(
            p, amc_number, mandate_id, signed_on.date(), iban, bic, _actor()
        )
    out.print(f"mandate {view.mandate_id} of {view.amc_number} recorded", highlight=False)


@payments.command("letters")
def letters(
    mark_sent: Annotated[
        bool, typer.Option("--mark-sent", help="Hand them over: they are not listed again.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The bank-details letters and notices waiting for the mail room (out of band)."""
    with platform() as p:
        found = bank_details.pending_letters(p, mark_sent)
    if as_json:
        print_json(
            [
                {
                    "id": str(letter.id),
                    "am_number": letter.am_number,
                    "kind": letter.kind,
                    "body": letter.body,
                    "created_at": letter.created_at.isoformat(),
                }
                for letter in found
            ]
        )
        return
    for letter in found:
        out.print(f"[{letter.kind}] to {letter.am_number}: {letter.body}", highlight=False)
    if not found:
        out.print("no letter waiting")


@payments.command("cancel-change")
def cancel_change(
    am_number: Annotated[str, typer.Option("--am-number", help="The professional.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (on the record).")],
) -> None:
    """Stop a professional's bank-details change under way (it reported it never asked)."""
    with platform() as p:
        view = bank_details.cancel_for_operator(p, am_number, reason, _actor())
    out.print(
        f"change {view.id} to the account {view.iban_hint} cancelled; payments go to the "
        "previous account",
        highlight=False,
    )
