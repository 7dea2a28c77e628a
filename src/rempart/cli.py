"""The ``rempart`` command: mounts each capability's commands."""

from __future__ import annotations

from typing import Annotated

import typer

from rempart.claims.cli import invoices_cli
from rempart.cli_support import err, out, reported_errors
from rempart.guard.cli import alerts as guard_alerts
from rempart.guard.cli import baselines as guard_baselines
from rempart.identity.cli import clients_cli, users
from rempart.incidents.cli import guard, incident
from rempart.incidents.simulator_cli import simulate_command
from rempart.integrity.cli import integrity
from rempart.ledger.cli import ledger
from rempart.payments.cli import payments
from rempart.platform import initialise
from rempart.registry.cli import keys, members, plans, professionals, tenants
from rempart.registry.demo_cli import demo_data
from rempart.settings import get_settings

app = typer.Typer(
    name="rempart",
    help="Rempart: a tiers-payant operator that cannot be read at scale.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tenants, name="tenants")
app.add_typer(plans, name="plans")
app.add_typer(members, name="members")
app.add_typer(professionals, name="professionals")
app.add_typer(keys, name="keys")
app.add_typer(ledger, name="ledger")
app.add_typer(users, name="users")
app.add_typer(clients_cli, name="clients")
app.add_typer(guard, name="guard")
app.add_typer(incident, name="incident")
app.add_typer(integrity, name="integrity")
app.add_typer(invoices_cli, name="invoices")
app.add_typer(payments, name="payments")
app.command("demo-data")(demo_data)
app.command("simulate")(simulate_command)
guard.command("baselines")(guard_baselines)
guard.command("alerts")(guard_alerts)


@app.command()
def init() -> None:
    """Create the home folder, the master key (0600) and the database schema. Idempotent."""
    settings = get_settings()
    with reported_errors():
        platform, created = initialise(settings)
        platform.close()
    key = settings.resolved_master_key_file
    out.print(f"database ready at {settings.resolved_database_url.split('@')[-1]}")
    out.print(
        f"master key {'created' if created else 'found'} at {key} "
        "(mode 0600; keep it out of the database's backups)"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API (and its documentation at /docs)."""
    import uvicorn

    with reported_errors():
        get_settings().check_production()
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"listening on {host}: put a TLS-terminating proxy in front (see docs/operations.md)"
        )
    base = f"http://{host}:{port}"
    out.print(f"Rempart is serving on {base}. Try next:")
    for command, what in (
        (f"curl {base}/health", "liveness"),
        (f"open {base}/docs", "the API documentation (OpenAPI)"),
        (".venv/bin/rempart tenants list", "the demo insurers and their counts"),
        (".venv/bin/rempart ledger verify", "the access log, checked end to end"),
        (".venv/bin/rempart --help", "every command"),
    ):
        out.print(f"  {command:<40} {what}", highlight=False)
    uvicorn.run(
        "rempart.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )


def main() -> None:
    app()
