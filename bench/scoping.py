"""Breach scoping at national scale: the DuckDB query of `rempart incident scope` over N events.

N synthetic access events are written directly as Parquet in the layout, schema and encoding of
the scope's export (``day=YYYY-MM-DD/part-<seq>.parquet``, ``window.ROWS_PER_FILE`` rows a file,
``window.PARQUET_OPTIONS``, leaf hashes included), with a national shape: 50,000 accounts of
16,000 professionals, 60 insurers, a million people, 200,000 addresses; 90 % rights checks (some
unknown or throttled), 5 % calculations, 5 % events about no one. One phished account (0.5 % of
the events, from three addresses) hides in them, spread over the week: every data page holds
some of its rows, the worst case. The query timed is ``scope.select_reads``, as the command runs
it: by account, then by account, professional and address block together. Baseline in the same
run, on the same files: DuckDB's cheapest scan that reads the data (one actor's rows counted:
one column). Wall-clock and CPU seconds are both recorded, with the load average: the machine
may be shared.

Files go under the system's temporary folder and are deleted at the end. Times are with the
files in the page cache (they were just written): the case of a scope run on a fresh export.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.common import record
from rempart.incidents import scope as scoping
from rempart.incidents.window import PARQUET_OPTIONS, ROWS_PER_FILE
from rempart.ledger.export import SCHEMA

START = datetime(2026, 1, 26, tzinfo=UTC)
DAYS = 7
CHUNK = 1_000_000
ATTACKER = f"user:{uuid.UUID(int=1)}"
ATTACKER_AM = "759999999"
ATTACKER_IPS = ["198.51.100.7", "198.51.100.23", "198.51.100.201"]
ATTACK_SHARE = 0.005
TAGS = ["beneficiary:rights:read"] * 18 + ["beneficiary:calculation:read", "account:login:success"]
OUTCOMES = ["open"] * 6 + ["closed"] * 2 + ["unknown", "throttled"]


def clocked(run: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (every thread of this process) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _pool(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string())


def _pick(pool: pa.Array, n: int) -> pa.Array:
    indexes = pc.cast(pc.floor(pc.multiply(pc.random(n), len(pool))), pa.int64())
    return pool.take(indexes)


class Generator:
    """Columns of synthetic events, chunk after chunk, with the attacker's rows counted."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.step = int(DAYS * 86_400 * 1_000_000 / total)  # microseconds between events
        accounts = [f"user:{uuid.uuid4()}" for _ in range(45_000)]
        accounts += [f"client:{uuid.uuid4()}" for _ in range(5_000)]
        self.actors = _pool(accounts)
        self.organisations = _pool([f"75{n % 16_000:07d}" for n in range(len(accounts))])
        self.tenants = _pool([f"{75_000_000 + n:08d}" for n in range(60)])
        self.people = _pool([os.urandom(16).hex() for _ in range(1_000_000)])
        self.ips = _pool([f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(200_000)])
        self.agents = _pool([f"LogicielPharma/{n}.0" for n in range(50)])
        self.purposes = _pool(
            [f"rights-check {d} 2026-01-2{n}" for d in ("PHAR", "OPTI") for n in range(6, 10)]
        )
        self.fields = pa.array(
            [["status"], ["engagement", "rate", "status"], ["amc_amount", "reject_codes"], []],
            pa.list_(pa.string()),
        )
        self.attacker_reads = 0

    def chunk(self, first: int, n: int) -> pa.Table:
        seq = pa.array(range(first, first + n), pa.int64())
        start = int(START.timestamp() * 1_000_000)
        at = pc.cast(pc.add(pc.multiply(seq, self.step), start), pa.timestamp("us", tz="UTC"))
        tag = _pick(_pool(TAGS), n)
        outcome = _pick(_pool(OUTCOMES), n)
        calculation = pc.equal(tag, "beneficiary:calculation:read")
        about_no_one = pc.equal(tag, "account:login:success")
        outcome = pc.if_else(calculation, "calculated", outcome)
        outcome = pc.if_else(about_no_one, "session", outcome)
        no_person = pc.or_(about_no_one, pc.is_in(outcome, _pool(["unknown", "throttled"])))
        attack = pc.less(pc.random(n), ATTACK_SHARE)
        actor = pc.if_else(attack, ATTACKER, _pick(self.actors, n))
        organisation = pc.if_else(attack, ATTACKER_AM, _pick(self.organisations, n))
        ip = pc.if_else(attack, _pick(_pool(ATTACKER_IPS), n), _pick(self.ips, n))
        empty = pa.nulls(n, pa.string())
        tenant = pc.if_else(about_no_one, empty, _pick(self.tenants, n))
        beneficiary = pc.if_else(no_person, empty, _pick(self.people, n))
        field_index = pc.if_else(
            calculation, 2, pc.if_else(no_person, 3, pc.if_else(pc.equal(outcome, "open"), 1, 0))
        )
        fields = self.fields.take(pc.cast(field_index, pa.int64()))
        leaves = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(32), n, [None, pa.py_buffer(os.urandom(32 * n))]
        )
        self.attacker_reads += pc.sum(pc.and_(attack, pc.invert(no_person))).as_py() or 0
        columns = {
            "seq": seq,
            "at": at,
            "tag": tag,
            "actor": actor,
            "organisation": organisation,
            "tenant": tenant,
            "beneficiary": beneficiary,
            "fields": fields,
            "purpose": _pick(self.purposes, n),
            "outcome": outcome,
            "ip": ip,
            "user_agent": _pick(self.agents, n),
            "leaf_hash": leaves,
        }
        return pa.Table.from_pydict(columns, schema=SCHEMA)


def write_events(out: Path, total: int) -> tuple[int, int, int]:
    """Write ``total`` events under ``out``; returns (files, bytes, the attacker's reads)."""
    generator = Generator(total)
    files = size = 0
    for first in range(0, total, CHUNK):
        table = generator.chunk(first, min(CHUNK, total - first))
        days = pc.strftime(table.column("at"), format="%Y-%m-%d").to_pylist()
        start = 0
        while start < table.num_rows:  # one day at a time, ROWS_PER_FILE rows a file at most
            end = min(start + ROWS_PER_FILE, table.num_rows)
            if days[end - 1] != days[start]:
                end = days.index(days[end - 1], start)
            part = out / f"day={days[start]}" / f"part-{first + start:012d}.parquet"
            part.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.slice(start, end - start), part, **PARQUET_OPTIONS)
            files += 1
            size += part.stat().st_size
            start = end
    return files, size, generator.attacker_reads


def main(events: int, rounds: int = 3, name: str = "scoping") -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-scoping-"))
    try:
        begun = time.perf_counter()
        files, size, expected_reads = write_events(work, events)
        generated = time.perf_counter() - begun
        window = scoping.Criteria(START, START + timedelta(days=DAYS))
        by_account = scoping.Criteria(window.since, window.until, actors=(ATTACKER,))
        everything = scoping.Criteria(
            window.since,
            window.until,
            actors=(ATTACKER,),
            professionals=(ATTACKER_AM,),
            networks=(ipaddress.ip_network("198.51.100.0/24"),),
        )
        con = scoping.connect()
        source = scoping.SOURCE
        glob = str(work / "**" / "*.parquet")

        def scan() -> None:
            con.sql(
                f"SELECT count(*) FROM {source} WHERE actor = ?", params=[glob, ATTACKER]
            ).fetchall()

        def count_star() -> None:
            con.sql(f"SELECT count(*) FROM {source}", params=[glob]).fetchall()

        found = scoping.select_reads(work, everything, con)  # warm-up, and the check
        reads = sum(found.column("reads").to_pylist())
        assert reads == expected_reads, f"expected {expected_reads} reads, got {reads}"
        runs: dict[str, list[tuple[float, float]]] = {}
        load = os.getloadavg()[0]
        for _ in range(rounds):
            for query, run in (
                ("account", lambda: scoping.select_reads(work, by_account, con)),
                ("all", lambda: scoping.select_reads(work, everything, con)),
                ("scan", scan),
                ("count", count_star),
            ):
                runs.setdefault(query, []).append(clocked(run))
        wall = {query: statistics.median(w for w, _ in times) for query, times in runs.items()}
        cpu = {query: statistics.median(c for _, c in times) for query, times in runs.items()}
        threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
        return record(
            name,
            events / wall["all"],
            "events/s",
            events / wall["scan"],
            "100 M access events scoped in ≤ 10 s on a 2-core machine (issue 7)",
            events=events,
            files=files,
            parquet_bytes=size,
            generation_seconds=round(generated, 1),
            people_found=found.num_rows,
            reads_found=reads,
            seconds_scope_by_account=round(wall["account"], 3),
            seconds_scope_account_professional_ip=round(wall["all"], 3),
            seconds_baseline_one_column_scan=round(wall["scan"], 3),
            seconds_count_star_metadata=round(wall["count"], 3),
            cpu_seconds_scope_by_account=round(cpu["account"], 3),
            cpu_seconds_scope_account_professional_ip=round(cpu["all"], 3),
            cpu_seconds_baseline_one_column_scan=round(cpu["scan"], 3),
            seconds_per_100M_events=round(wall["all"] * 100_000_000 / events, 1),
            cpu_seconds_per_100M_events=round(cpu["all"] * 100_000_000 / events, 1),
            threads=threads,
            load_average_before=round(load, 2),  # other work on the machine slows the wall clock
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="scoping", help="the result file's name")
    arguments = parser.parse_args()
    main(arguments.events, arguments.rounds, arguments.name)
