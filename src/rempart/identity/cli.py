"""Commands for accounts."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from rempart.cli_support import err, out, platform, print_json
from rempart.errors import InvalidInput
from rempart.identity import clients, services

users = typer.Typer(
    help="Accounts: professionals, insurers' staff, operators, security analysts.",
    no_args_is_help=True,
)


@users.command("add")
def add(
    role: Annotated[str, typer.Option(help="professional, amc, operator or security.")],
    email: Annotated[str, typer.Option(help="The person's e-mail address (their login).")],
    am_number: Annotated[
        str | None, typer.Option("--am-number", help="role professional: its billing number.")
    ] = None,
    amc_number: Annotated[
        str | None, typer.Option("--amc-number", help="role amc: the insurer.")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input (automation)."
        ),
    ] = False,
    enrol_totp: Annotated[
        bool, typer.Option("--totp", help="With --password-stdin: enrol TOTP now.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Create an account. It prints an enrolment code for the portal, or, for automation with
    --password-stdin --totp, the TOTP provisioning URI: shown once, never again."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with platform() as p:
        created = services.add_user(
            p,
            role,
            email,
            actor=f"cli:{getpass.getuser()}",
            am_number=am_number,
            amc_number=amc_number,
            password=password,
            enrol_totp=enrol_totp,
        )
    if as_json:
        document: dict[str, object] = {"user_id": str(created.user_id)}
        if created.totp_uri:
            document["totp_uri"] = created.totp_uri
        if created.enrolment_code:
            document["enrolment_code"] = created.enrolment_code
        print_json(document)
        return
    out.print(f"account {created.user_id} created ({created.role})")
    if created.enrolment_code:
        hours = p.settings.enrolment_hours
        out.print(f"enrolment code (valid {hours} h, shown once): {created.enrolment_code}")
    if created.totp_uri:
        err.print("TOTP enrolled; provisioning URI (shown once, keep it secret):")
        out.print(created.totp_uri, highlight=False)


clients_cli = typer.Typer(
    help="API clients: billing software known by a public key.", no_args_is_help=True
)


@clients_cli.command("add")
def add_client(
    am_number: Annotated[
        str, typer.Option("--am-number", help="The professional's billing number.")
    ],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The software's Ed25519 public key (PEM).")
    ],
    name: Annotated[
        str, typer.Option(help="A name to recognise the software by.")
    ] = "billing software",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Register billing software for a professional (operators; professionals use the portal)."""
    with platform() as p:
        if not public_key.is_file():
            raise InvalidInput(f"{public_key} is not a readable file", field="public_key")
        view = clients.register_client(
            p,
            clients.professional_id_of(p, am_number),
            name,
            public_key.read_text(),
            f"cli:{getpass.getuser()}",
        )
    if as_json:
        print_json({"client_id": str(view.client_id)})
    else:
        out.print(f"client {view.client_id} registered for {am_number}")
