"""``rempart demo-data``: write the demo files and load them through the real imports."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
from pathlib import Path
from typing import Annotated

import typer

from rempart.cli_support import out, platform
from rempart.db import utcnow
from rempart.errors import Conflict, InvalidInput, NotFound
from rempart.identity import enrolment, totp
from rempart.identity.auth import Client
from rempart.identity.services import add_user
from rempart.platform import Platform
from rempart.registry import services
from rempart.registry.demo import TENANTS, DemoFiles, demo_files
from rempart.registry.member_file import COLUMNS
from rempart.registry.member_import import ImportOptions, import_members

# Demo accounts, one per role, for the portals: in development only, never elsewhere. Their
# password and TOTP secrets are public by design (printed, derived from the role's name).
DEMO_PASSWORD = "un mot de passe de démonstration"  # noqa: S105 (public, demo only)
DEMO_ACCOUNTS = (
    ("professional", "pharmacie@demo.rempart.example", "/pro/"),
    ("amc", "gestion@demo.rempart.example", "/amc/"),
    ("operator", "exploitation@demo.rempart.example", "/ops/"),
    ("security", "securite@demo.rempart.example", "/ops/"),
)


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
        bool,
        typer.Option("--if-empty", help="Load nothing if any insurer exists (accounts are shown)."),
    ] = False,
) -> None:
    """Load synthetic insurers, plans, members and professionals (Faker fr_FR, valid numbers)."""
    files = demo_files(members, seed)
    if if_empty:
        with platform() as p:
            if services.list_tenants(p):
                out.print("the database already holds insurers: demo data not loaded")
                _demo_accounts(p, files)
                return
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
            f"professionals: {report.inserted} added, "
            f"{report.updated + report.unchanged} already there"
        )
        _demo_accounts(p, files)


def demo_secret(role: str) -> str:
    """The demo account's TOTP secret: public, the same on every machine (160 bits, base32)."""
    return base64.b32encode(hashlib.sha256(f"rempart-demo|{role}".encode()).digest()[:20]).decode()


def _demo_accounts(p: Platform, files: DemoFiles) -> None:
    """One enrolled account per role, through the real enrolment, and how to sign in with each.
    Only in development: a known password and secret have no place anywhere else."""
    if p.settings.env != "development":
        return
    professionals = list(csv.DictReader(io.StringIO(files.professionals.decode())))
    pharmacy = next(r["am_number"] for r in professionals if r["profession"] == "pharmacist")
    amc = TENANTS[0][0]
    out.print(
        f"\n[bold]Portals[/] (development only): sign in at {p.settings.public_url}/login with "
        f'the address below and the password "{DEMO_PASSWORD}", then the 6-digit code of the '
        "account's TOTP secret (add the otpauth URI to an authenticator app, or print a code "
        "with: .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\")",
        soft_wrap=True,
    )
    for role, email, home in DEMO_ACCOUNTS:
        secret = demo_secret(role)
        try:
            created = add_user(
                p,
                role,
                email,
                actor="cli:demo-data",
                am_number=pharmacy if role == "professional" else None,
                amc_number=amc if role == "amc" else None,
            )
            assert created.enrolment_code is not None
            enrolment.complete_enrolment(
                p,
                created.enrolment_code,
                DEMO_PASSWORD,
                secret,
                totp.code_at(secret, utcnow()),
                Client(),
            )
        except Conflict:
            pass  # created by an earlier run: same address, password and secret
        except NotFound:
            out.print(f"  {role}: not created (the demo data were loaded with other options)")
            continue
        out.print(
            f"  {role:<12} {email:<36} {p.settings.public_url}{home}",
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"  {'':<12} TOTP secret {secret}", highlight=False, soft_wrap=True)
        out.print(
            f"  {'':<12} {totp.provisioning_uri(secret, email)}", highlight=False, soft_wrap=True
        )
    card = _sample_card(files.members[amc])
    if card:
        out.print(
            f"A card for the pharmacy to check (domain PHAR): AMC {amc}, member "
            f"{card['member_number']}, born {card['birth_date']}, rank {card['birth_rank']}.",
            highlight=False,
            soft_wrap=True,
        )


def _sample_card(member_file: bytes) -> dict[str, str] | None:
    """An insured person of the demo file with open rights and nothing suspended."""
    rows = csv.DictReader(io.StringIO(member_file.decode()), fieldnames=COLUMNS)
    next(rows)  # the header
    return next(
        (
            r
            for r in rows
            if r["relationship"] == "insured" and not r["end_date"] and not r["suspended_domains"]
        ),
        None,
    )
