"""Commands of the ledger: verify it, prove an entry, sign a checkpoint, show the verifier key;
and, for an insurer, offline checks of kept checkpoints and proofs (no database, no platform)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rempart.cli_support import byte_progress, err, out, platform, print_json, reported_errors
from rempart.errors import InvalidInput, VerificationError
from rempart.ledger import services
from rempart.ledger.checkpoint import (
    Checkpoint,
    check_extends,
    check_included,
    open_log_checkpoint,
    parse_verifier_key,
    verifier_key_string,
)
from rempart.ledger.export import export_events

ledger = typer.Typer(
    help="The tamper-evident log of every access to personal data.", no_args_is_help=True
)


KeyFile = Annotated[
    Path,
    typer.Option(
        "--public-key",
        exists=True,
        dir_okay=False,
        help="The verifier key (`rempart ledger public-key`, or verifier_key of the API).",
    ),
]


@ledger.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
    kept: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            exists=True,
            dir_okay=False,
            help="A checkpoint kept outside the database (by an insurer); repeat for several.",
        ),
    ] = None,
) -> None:
    """Recompute the whole log against its stored tree, every signed checkpoint, and the kept
    checkpoints given (numbered 1, 2… in the order given).

    Exit status 0 when intact, 1 when anything was modified, deleted or inserted (each is named).
    """
    kept = kept or []
    with reported_errors():
        notes = [_read_note(path) for path in kept]
    with platform() as p, byte_progress(0, "verifying") as bar:
        task = bar.add_task("verify", total=None)
        report = services.verify_ledger(
            p.sessions,
            p.keyring,
            p.settings.ledger_origin,
            lambda done, total: bar.update(task, completed=done, total=total),
            external=notes,
        )
    if as_json:
        print_json(
            {
                "size": report.size,
                "entries": report.entries,
                "checkpoints": report.checkpoints,
                "kept": report.kept,
                "intact": report.intact,
                "problems": report.problems,
            }
        )
    elif report.intact:
        out.print(
            f"ledger intact: {report.size} entries, {report.checkpoints} checkpoints "
            f"and {report.kept} kept checkpoints verified"
        )
    else:
        out.print(f"[bold red]ledger altered[/]: {len(report.problems)} problems")
        for problem in report.problems:
            out.print(f"  - {problem}", highlight=False)
        for number, path in enumerate(kept, start=1):
            out.print(f"  (kept checkpoint {number}: {path})", highlight=False)
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


# --- Offline checks, for an insurer: files and the verifier key only, never the platform ---------


@ledger.command("witness")
def witness(
    key_file: KeyFile,
    old: Annotated[Path, typer.Option("--old", exists=True, dir_okay=False, help="The kept note.")],
    new: Annotated[
        Path, typer.Option("--new", exists=True, dir_okay=False, help="The newer note.")
    ],
    proof_file: Annotated[
        Path | None,
        typer.Option(
            "--proof",
            exists=True,
            dir_okay=False,
            help="The answer of /api/v1/ledger/consistency (not needed between equal sizes).",
        ),
    ] = None,
) -> None:
    """Check that a newer checkpoint extends a kept one: both signatures and the consistency
    proof (RFC 9162). Offline. Exit status 0 when it does, 1 when it does not (a rewritten
    history or a fork) or when a file is refused."""
    with reported_errors():
        name, key = _read_key(key_file)
        kept = _open_note(old, name, key)
        newer = _open_note(new, name, key)
        if newer.size < kept.size:
            raise InvalidInput(
                f"the new note (size {newer.size}) is older than the kept one ({kept.size})",
                field="--new",
            )
        proof = _consistency_proof(proof_file, kept, newer)
    try:
        check_extends(kept, newer, proof)
    except VerificationError as exc:
        _fail(
            f"NOT consistent: the checkpoint of size {newer.size} does not extend the kept one "
            f"of size {kept.size}: the history was rewritten, or the log forked ({exc.detail})"
        )
    out.print(
        f"consistent: the checkpoint of size {newer.size} extends the kept one of size "
        f"{kept.size} ({name})",
        highlight=False,
    )


@ledger.command("check-event")
def check_event(
    key_file: KeyFile,
    note_file: Annotated[
        Path, typer.Option("--note", exists=True, dir_okay=False, help="A kept checkpoint.")
    ],
    proof_file: Annotated[
        Path,
        typer.Option(
            "--proof",
            exists=True,
            dir_okay=False,
            help="An event of /api/v1/ledger/events, a whole page of it, or `ledger prove`.",
        ),
    ],
) -> None:
    """Check that events are in the log as signed by a kept checkpoint (RFC 9162 inclusion
    proofs). Offline. Exit status 0 when every event is, 1 otherwise."""
    with reported_errors():
        name, key = _read_key(key_file)
        checkpoint = _open_note(note_file, name, key)
        items = _event_proofs(_read_json(proof_file))
    failed = 0
    for seq, size, event, proof in items:
        try:
            if size != checkpoint.size:
                raise VerificationError(
                    f"the proof is for a tree of size {size}, the checkpoint of size "
                    f"{checkpoint.size}: get a proof for this size"
                )
            check_included(checkpoint, seq, event, proof)
        except VerificationError as exc:
            failed += 1
            err.print(f"[bold red]event {seq} NOT proved[/]: {exc.detail}", highlight=False)
            continue
        out.print(f"event {seq} is in the log of size {checkpoint.size} ({name})", highlight=False)
    if failed:
        raise typer.Exit(1)


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]{message}[/]", highlight=False)
    raise typer.Exit(1)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("expected UTF-8 text", field=str(path)) from None


def _read_note(path: Path) -> str:
    # Signatures cover the body only: blank lines after the last one (an editor, `jq -r`) are
    # harmless, and dropping them spares the insurer a puzzling refusal.
    return _read_text(path).rstrip("\n") + "\n"


def _read_key(path: Path) -> tuple[str, Ed25519PublicKey]:
    return parse_verifier_key(_read_text(path))


def _open_note(path: Path, name: str, key: Ed25519PublicKey) -> Checkpoint:
    try:
        return open_log_checkpoint(_read_note(path), name, key)
    except VerificationError as exc:
        raise VerificationError(f"{path} is refused: {exc.detail}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError:
        raise InvalidInput("expected a JSON document", field=str(path)) from None


def _hashes(value: Any, field: str) -> list[bytes]:
    if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
        raise InvalidInput("expected a list of base64 hashes", field=field)
    try:
        return [base64.b64decode(h, validate=True) for h in value]
    except (binascii.Error, ValueError):
        raise InvalidInput("expected a list of base64 hashes", field=field) from None


def _integer(item: dict[str, Any], *names: str) -> int:
    """The first of ``names`` present in ``item``: the API's names, then `ledger prove`'s."""
    for name in names:
        value = item.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise InvalidInput("expected an integer", field=names[0])


def _consistency_proof(path: Path | None, old: Checkpoint, new: Checkpoint) -> list[bytes]:
    if path is None:
        if old.size != new.size:
            raise InvalidInput(
                f"a consistency proof from {old.size} to {new.size} is needed: get "
                f"/api/v1/ledger/consistency?from_size={old.size}&to_size={new.size}",
                field="--proof",
            )
        return []
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InvalidInput(
            "expected the JSON object of /api/v1/ledger/consistency", field="--proof"
        )
    sizes = (_integer(data, "from_size"), _integer(data, "to_size"))
    if sizes != (old.size, new.size):
        raise InvalidInput(
            f"expected a proof from {old.size} to {new.size} (the notes' sizes), "
            f"got one from {sizes[0]} to {sizes[1]}",
            field="--proof",
        )
    return _hashes(data.get("proof"), "proof")


def _event_proofs(data: Any) -> list[tuple[int, int, bytes, list[bytes]]]:
    """(seq, tree size, event, proof) of each event: one event, or a page of /events."""
    items = data.get("events") if isinstance(data, dict) and "events" in data else [data]
    if not isinstance(items, list) or not items:
        raise InvalidInput("expected at least one event", field="events")
    proofs = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("event"), str):
            raise InvalidInput("expected an event with its proof", field="event")
        proofs.append(
            (
                _integer(item, "seq", "leafIdx"),
                _integer(item, "tree_size", "treeSize"),
                item["event"].encode(),
                _hashes(item.get("proof"), "proof"),
            )
        )
    return proofs
