"""Breach scoping: from "these accounts, professionals or addresses were abused between T1 and
T2" to the exact people read, per insurer (AMC), with the fields disclosed and when.

Three steps, each checkable afterwards: the ledger is verified over the window and the window's
events exported to Parquet from the verified leaves (``incidents.window``); DuckDB selects the
reads matching the criteria and groups them by insurer and pseudonym; one file per insurer and a
``scope.json`` (criteria, verification, checkpoint cited, counts) are written, owner-only.

What counts as a read (docs/incidents.md): an event that names an insurer and a beneficiary
pseudonym, whatever its tag, unless its outcome disclosed nothing about a person (``NOT_READ``:
``throttled``, refused by a quota before any look-up; ``unknown``, no such beneficiary, answered
exactly as closed rights). A rights check answered ``open`` or ``closed`` for a known person, and
a calculation (``calculated``), are reads of the fields the event lists.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.db import transaction, utcnow
from rempart.errors import InvalidInput, NotFound
from rempart.identity.models import ApiClient, User
from rempart.identity.services import email_index
from rempart.incidents.containment import user_id
from rempart.incidents.window import WindowReport, verify_window
from rempart.platform import Platform
from rempart.registry.models import Professional

FORMAT = "rempart-scope/1"
SCOPE_FILE = "scope.json"
EVENTS = "events"  # the verified export of the window, beside the scope
NOT_READ = ("throttled", "unknown")  # outcomes that disclosed nothing about a person
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SAFE_AMC = re.compile(r"[0-9A-Za-z]{1,20}")
# The export's files; ``day`` (the folder) prunes the files outside the window.
SOURCE = "read_parquet(?, hive_partitioning = true, hive_types = {'day': DATE})"


# --- Criteria ------------------------------------------------------------------------------------


class UnknownName(NotFound):
    """A name in the criteria that matches nothing; ``field`` says which criterion (``account``,
    ``professional``), so that a form can point at it without reading the message."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.field = field


@dataclass(frozen=True)
class Criteria:
    """Whose reads, and when: an event matches when its actor, its professional or its address
    is one of those named (any of them), and its time is in [since, until)."""

    since: datetime
    until: datetime
    actors: tuple[str, ...] = ()
    professionals: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "accounts": list(self.actors),
            "professionals": list(self.professionals),
            "networks": [str(n) for n in self.networks],
            "from": self.since.isoformat(),
            "to": self.until.isoformat(),
            "match": "any of the accounts, professionals or networks, within [from, to)",
            "read": "an event naming an insurer and a beneficiary, "
            f"whose outcome is not one of {', '.join(NOT_READ)}",
        }


def parse_time(text: str, name: str) -> datetime:
    """An ISO 8601 time; without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("not an ISO 8601 time (e.g. 2026-01-29T06:00)", field=name) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def resolve_criteria(
    platform: Platform,
    since: datetime,
    until: datetime,
    accounts: Sequence[str] = (),
    professionals: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> Criteria:
    """Turn what an operator knows (an e-mail, a billing number, an address block) into what the
    ledger records. An account is an e-mail address, a user id, ``user:<id>`` or ``client:<id>``;
    a person's account brings the API clients it registered from ``since`` on (keys planted with
    a stolen session). E-mail addresses are never kept: the criteria name ids."""
    if not since < until:
        raise InvalidInput("--from must be before --to", field="from")
    if not (accounts or professionals or ips):
        raise InvalidInput("name at least one --account, --professional or --ip", field="criteria")
    networks = []
    for block in ips:
        try:
            networks.append(ipaddress.ip_network(block.strip(), strict=False))
        except ValueError:
            raise InvalidInput("not an IP address or CIDR block", field="ip") from None
    actors: list[str] = []
    with transaction(platform.sessions) as session:
        for account in accounts:
            for actor in _actors(platform, session, account.strip(), since):
                if actor not in actors:
                    actors.append(actor)
        for am_number in professionals:
            if session.scalar(select(Professional.id).where(Professional.am_number == am_number)):
                continue
            raise UnknownName(f"no professional with billing number {am_number}", "professional")
    return Criteria(
        since, until, tuple(actors), tuple(dict.fromkeys(professionals)), tuple(networks)
    )


def _actors(platform: Platform, session: Session, account: str, since: datetime) -> list[str]:
    kind, _, rest = account.partition(":")
    if kind == "client" and rest:
        client_id = _uuid(rest)
        if session.get(ApiClient, client_id) is None:
            raise UnknownName("no API client with this id", "account")
        return [f"client:{client_id}"]
    if "@" in account:
        found = session.scalar(
            select(User.id).where(User.email_index == email_index(platform, session, account))
        )
        if found is None:
            raise UnknownName("no account with this e-mail address", "account")
    else:
        found = user_id(account) or _uuid(account)
        if session.get(User, found) is None:
            raise UnknownName(f"no account with id {found}", "account")
    planted = session.scalars(
        select(ApiClient.id)
        .where(ApiClient.registered_by == f"user:{found}", ApiClient.created_at >= since)
        .order_by(ApiClient.created_at)
    )
    return [f"user:{found}", *(f"client:{c}" for c in planted)]


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput(
            "an account is an e-mail address, a user id, user:<id> or client:<id>",
            field="account",
        ) from None


# --- Selection with DuckDB ----------------------------------------------------------------------


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that reads and writes times in UTC."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _octet_prefix(network: Network) -> str | None:
    """The text every address of an IPv4 block of whole octets starts with (``10.1.``): the
    test is then exact on canonical dotted text, and cheap in the scan."""
    if network.version != 4 or network.prefixlen % 8 or network.prefixlen == 0:
        return None
    octets = str(network.network_address).split(".")[: network.prefixlen // 8]
    return ".".join(octets) + ("." if network.prefixlen < 32 else "")


def _matching_ips(
    con: duckdb.DuckDBPyConnection, events: Path, networks: list[Network]
) -> list[str]:
    """The addresses of the export that fall in one of ``networks`` (IPv4 blocks not of whole
    octets, IPv6, whose text has no fixed prefix): candidates from the scan, checked here."""
    clauses = ["contains(ip, '.')" if n.version == 4 else "contains(ip, ':')" for n in networks]
    seen = con.sql(
        f"SELECT DISTINCT ip FROM {SOURCE} WHERE ip IS NOT NULL AND ({' OR '.join(clauses)})",  # noqa: S608
        params=[_glob(events)],
    ).fetchall()
    matching = []
    for (text,) in seen:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if any(address in network for network in networks):
            matching.append(text)
    return sorted(matching)


def _glob(events: Path) -> str:
    return str(events / "**" / "*.parquet")


def _when(criteria: Criteria) -> list[Any]:
    return [
        criteria.since,
        criteria.until,
        criteria.since.astimezone(UTC).date(),
        criteria.until.astimezone(UTC).date(),
    ]


READS_SCHEMA = pa.schema(
    [
        ("amc", pa.string()),
        ("pseudonym", pa.string()),
        ("first_read", pa.timestamp("us", tz="UTC")),
        ("last_read", pa.timestamp("us", tz="UTC")),
        ("reads", pa.int64()),
        ("fields", pa.list_(pa.string())),
    ]
)


def select_reads(
    events: Path, criteria: Criteria, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    """The people read under ``criteria``, one row per (insurer, pseudonym), from an export."""
    if not any(events.glob("**/*.parquet")):
        return READS_SCHEMA.empty_table()
    con = con or connect()
    others = [n for n in criteria.networks if _octet_prefix(n) is None]
    clauses, params = [], []
    for column, values in (
        ("actor", list(criteria.actors)),
        ("organisation", list(criteria.professionals)),
        ("ip", _matching_ips(con, events, others) if others else []),
    ):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
    for network in criteria.networks:
        prefix = _octet_prefix(network)
        if prefix is not None:
            clauses.append("ip = ?" if network.prefixlen == 32 else "starts_with(ip, ?)")
            params.append(prefix)
    who = " OR ".join(clauses) or "FALSE"
    excluded = ", ".join(f"'{outcome}'" for outcome in NOT_READ)
    query = f"""
        SELECT tenant AS amc, beneficiary AS pseudonym, min("at") AS first_read,
               max("at") AS last_read, count(*) AS reads,
               list_sort(list_distinct(flatten(list(fields)))) AS fields
        FROM {SOURCE}
        WHERE "at" >= ? AND "at" < ? AND day BETWEEN ? AND ?
          AND tenant IS NOT NULL AND beneficiary IS NOT NULL
          AND outcome NOT IN ({excluded})
          AND ({who})
        GROUP BY tenant, beneficiary
        ORDER BY tenant, beneficiary
    """  # noqa: S608 - only placeholders and constants are formatted in
    table = con.sql(query, params=[_glob(events), *_when(criteria), *params]).to_arrow_table()
    return table.cast(READS_SCHEMA)


# --- The scope folder ---------------------------------------------------------------------------


@dataclass
class AmcScope:
    amc: str
    people: int
    reads: int
    fields: list[str]
    first_read: datetime | None
    last_read: datetime | None
    files: dict[str, str]  # kind -> file name
    sha256: dict[str, str]  # file name -> digest


@dataclass
class ScopeResult:
    out: Path
    criteria: Criteria
    window: WindowReport
    amcs: list[AmcScope]
    status: str  # complete | forced | refused

    @property
    def people(self) -> int:
        return sum(a.people for a in self.amcs)

    @property
    def reads(self) -> int:
        return sum(a.reads for a in self.amcs)

    def describe(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "status": self.status,
            "generated_at": utcnow().isoformat(timespec="seconds"),
            "criteria": self.criteria.describe(),
            "ledger": self.window.describe(),
            "events": EVENTS,
            "amcs": [
                {
                    "amc": a.amc,
                    "people": a.people,
                    "reads": a.reads,
                    "fields": a.fields,
                    "first_read": a.first_read.isoformat() if a.first_read else None,
                    "last_read": a.last_read.isoformat() if a.last_read else None,
                    "files": a.files,
                    "sha256": a.sha256,
                }
                for a in self.amcs
            ],
            "totals": {"amcs": len(self.amcs), "people": self.people, "reads": self.reads},
        }


def scope(
    platform: Platform,
    criteria: Criteria,
    out: Path,
    external: Sequence[str] = (),
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ScopeResult:
    """Verify the window, export it, select the reads and write the scope folder ``out``.

    An altered ledger gives no scope (``status: refused``, the problems in scope.json) unless
    ``force``: then the scope is written with the problems beside it (``status: forced``).
    """
    if out.exists() and any(out.iterdir()):
        raise InvalidInput("the output folder is not empty: scope into a new folder", field="out")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)
    window = verify_window(
        platform, criteria.since, criteria.until, out / EVENTS, external, progress
    )
    if not window.intact and not force:
        shutil.rmtree(out / EVENTS, ignore_errors=True)  # from an altered log: not kept
        result = ScopeResult(out, criteria, window, [], "refused")
    else:
        reads = select_reads(out / EVENTS, criteria)
        amcs = [_write_amc(out, amc, rows) for amc, rows in _by_amc(reads)]
        result = ScopeResult(out, criteria, window, amcs, "complete" if window.intact else "forced")
    write_private(out / SCOPE_FILE, json.dumps(result.describe(), indent=2) + "\n")
    return result


def _by_amc(reads: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    amcs = reads.column("amc").to_pylist()
    start = 0
    for position in range(1, len(amcs) + 1):  # sorted by amc: one slice each
        if position == len(amcs) or amcs[position] != amcs[start]:
            yield amcs[start], reads.slice(start, position - start)
            start = position


def amc_file(amc: str, suffix: str) -> str:
    """The name of an insurer's scope file; an AMC number is digits, anything else is hex."""
    safe = amc if _SAFE_AMC.fullmatch(amc) else amc.encode().hex()
    return f"amc-{safe}.{suffix}"


def _write_amc(out: Path, amc: str, rows: pa.Table) -> AmcScope:
    rows = rows.drop_columns(["amc"])
    parquet_name, csv_name = amc_file(amc, "parquet"), amc_file(amc, "csv")
    pq.write_table(rows, out / parquet_name)
    os.chmod(out / parquet_name, 0o600)
    lines = []
    for row in rows.to_pylist():
        lines.append(
            [
                row["pseudonym"],
                row["first_read"].isoformat(),
                row["last_read"].isoformat(),
                row["reads"],
                ";".join(row["fields"]),
            ]
        )
    with private_file(out / csv_name) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(rows.column_names)
        writer.writerows(lines)
    fields = sorted({f for row in lines for f in str(row[4]).split(";") if f})
    firsts = rows.column("first_read").to_pylist()
    lasts = rows.column("last_read").to_pylist()
    return AmcScope(
        amc,
        rows.num_rows,
        sum(rows.column("reads").to_pylist()),
        fields,
        min(firsts) if firsts else None,
        max(lasts) if lasts else None,
        {"csv": csv_name, "parquet": parquet_name},
        {name: sha256_file(out / name) for name in (csv_name, parquet_name)},
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def private_file(path: Path) -> Iterator[TextIO]:
    """A new text file readable by its owner only (pseudonyms; later, names)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
        yield handle


def write_private(path: Path, text: str) -> None:
    """Write a whole file, owner-only, atomically: a reader finds the old file or the new one,
    never half of it (a crash mid-write leaves only a hidden temporary file behind)."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with private_file(partial) as handle:
            handle.write(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_scope(folder: Path) -> dict[str, Any]:
    """The scope.json of a scope folder, checked for its format."""
    path = folder / SCOPE_FILE
    if not path.is_file():  # the messages name no path: they may reach the console's pages
        raise NotFound(
            f"this folder has no {SCOPE_FILE}: give the folder written by `rempart incident scope`"
        )
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError):
        raise InvalidInput(f"{SCOPE_FILE} cannot be read as JSON", field="scope") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"{SCOPE_FILE} is not a scope of format {FORMAT}", field="scope")
    return data
