"""Commands of the ledger: verify it, prove an entry, sign a checkpoint, show the verifier key."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from rempart.cli_support import byte_progress, out, platform, print_json
from rempart.ledger import services
from rempart.ledger.checkpoint import verifier_key_string
from rempart.ledger.export import export_events

ledger = typer.Typer(
    help="The tamper-evident log of every access to personal data.", no_args_is_help=True
)


@ledger.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Recompute the whole log against its stored tree and every signed checkpoint.

    Exit status 0 when intact, 1 when anything was modified, deleted or inserted (each is named).
    """
    with platform() as p, byte_progress(0, "verifying") as bar:
        task = bar.add_task("verify", total=None)
        report = services.verify_ledger(
            p.sessions,
            p.keyring,
            p.settings.ledger_origin,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(
            {
                "size": report.size,
                "entries": report.entries,
                "checkpoints": report.checkpoints,
                "intact": report.intact,
                "problems": report.problems,
            }
        )
    elif report.intact:
        out.print(
            f"ledger intact: {report.size} entries, {report.checkpoints} checkpoints verified"
        )
    else:
        out.print(f"[bold red]ledger altered[/]: {len(report.problems)} problems")
        for problem in report.problems:
            out.print(f"  - {problem}", highlight=False)
    if not report.intact:
        raise typer.Exit(1)


@ledger.command("prove")
def prove(
    event: Annotated[int, typer.Option("--event", help="The entry's sequence number.")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: the current one).")] = None,
) -> None:
    """Print the inclusion proof of an entry (RFC 9162), as JSON, for offline verification."""
    with platform() as p:
        proof = services.prove_inclusion(p.sessions, event, size)
    b64 = base64.b64encode
    print_json(
        {
            "leafIdx": proof.seq,
            "treeSize": proof.size,
            "leafHash": b64(proof.leaf_hash).decode(),
            "root": b64(proof.root).decode(),
            "proof": [b64(h).decode() for h in proof.proof],
            "event": proof.event.decode(),
        }
    )


@ledger.command("checkpoint")
def checkpoint() -> None:
    """Sign the log's current size and root, and print the checkpoint (a signed note)."""
    with platform() as p:
        note = services.make_checkpoint(p.sessions, p.keyring, p.settings.ledger_origin)
    typer.echo(note, nl=False)


@ledger.command("export")
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="A new folder for the Parquet files.")],
    since: Annotated[
        datetime | None, typer.Option("--from", help="From this UTC time (ISO 8601), included.")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--to", help="Up to this UTC time (ISO 8601), excluded.")
    ] = None,
) -> None:
    """Export access events to Parquet, one folder per day (day=YYYY-MM-DD), for DuckDB."""
    with platform() as p, byte_progress(0, "exporting") as bar:
        task = bar.add_task("export", total=None)
        report = export_events(
            p.sessions,
            out_dir,
            _utc(since),
            _utc(until),
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(
        f"{report.events} events exported to {out_dir}: {report.files} files, {report.days} days"
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@ledger.command("public-key")
def public_key() -> None:
    """Print the verifier key (signed-note format) with which insurers check checkpoints."""
    with platform() as p:
        key = services.public_key(p.sessions, p.keyring)
        typer.echo(verifier_key_string(p.settings.ledger_origin, key))
