"""The ledger: append rate (batched, as the recorder commits) against plain inserts of the same
events, proof size and verification time at 10 M and 100 M leaves, and the verify rate."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table, insert

from bench.common import median, record, timed
from rempart.db import make_engine, transaction
from rempart.ledger import merkle, services
from rempart.ledger.events import AccessEvent, Tag
from rempart.platform import initialise
from rempart.settings import Settings

BATCH = 500
T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)

plain = MetaData()
plain_events = Table(
    "plain_events",
    plain,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("tag", String(60)),
    Column("actor", String(80)),
    Column("tenant", String(10)),
    Column("beneficiary", String(64)),
    Column("event", LargeBinary),
)


def events(count: int) -> list[AccessEvent]:
    return [
        AccessEvent(
            at=T0 + timedelta(milliseconds=n),
            tag=Tag.RIGHTS_READ,
            actor=f"client:{n % 997}",
            outcome="open",
            purpose="rights-check",
            organisation=f"75{n % 9973:07d}",
            tenant="75000001",
            beneficiary=f"{n * 7919:032x}",
            fields=("status", "rate", "engagement"),
            ip="198.51.100.7",
        )
        for n in range(count)
    ]


@cache
def _identical_tree_hash(size: int) -> bytes:
    """Root of a tree whose leaves are all the same: it depends on the size alone."""
    if size == 1:
        return merkle.leaf_hash(b"leaf")
    k = 1 << ((size - 1).bit_length() - 1)
    return merkle.node_hash(_identical_tree_hash(k), _identical_tree_hash(size - k))


def proof_figures(size: int) -> tuple[int, float]:
    """Proof size in bytes and median verification time in µs, for a leaf in the middle."""
    index = size // 2
    proof = merkle.inclusion_proof(
        index, size, lambda start, end: _identical_tree_hash(end - start)
    )
    root, leaf = _identical_tree_hash(size), merkle.leaf_hash(b"leaf")
    times = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(1000):
            merkle.verify_inclusion(leaf, index, size, proof, root)
        times.append((time.perf_counter() - start) * 1000)  # µs per verification
    return 32 * len(proof), median(times)


def main(count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-ledger-"))
    try:
        batch = events(count)
        platform, _ = initialise(Settings(env="test", home=work / "ledger"))

        def append_all() -> None:
            for start in range(0, count, BATCH):
                with transaction(platform.sessions) as session:
                    services.append_events(session, batch[start : start + BATCH])

        appended = count / timed(append_all)
        engine = make_engine(f"sqlite:///{work / 'plain.sqlite3'}")
        plain.create_all(engine)

        def insert_all() -> None:
            for start in range(0, count, BATCH):
                rows = [
                    {
                        "seq": n,
                        "tag": e.tag,
                        "actor": e.actor,
                        "tenant": e.tenant,
                        "beneficiary": e.beneficiary,
                        "event": e.encode(),
                    }
                    for n, e in enumerate(batch[start : start + BATCH], start)
                ]
                with engine.begin() as conn:
                    conn.execute(insert(plain_events), rows)

        inserted = count / timed(insert_all)
        origin = platform.settings.ledger_origin
        services.make_checkpoint(platform.sessions, platform.keyring, origin)
        verify_seconds = timed(
            lambda: services.verify_ledger(platform.sessions, platform.keyring, origin)
        )
        platform.close()
        engine.dispose()
        proofs = {size: proof_figures(size) for size in (10_000_000, 100_000_000)}
        record(
            "ledger_append_sqlite",
            appended,
            "events/s",
            inserted,
            "batched appends cost little next to plain inserts; the rights-check benchmark "
            "drops by at most 10 % (issue 6)",
            events=count,
            batch=BATCH,
            verify_events_per_second=round(count / verify_seconds),
            proof_bytes_10M=proofs[10_000_000][0],
            proof_verify_us_10M=round(proofs[10_000_000][1], 1),
            proof_bytes_100M=proofs[100_000_000][0],
            proof_verify_us_100M=round(proofs[100_000_000][1], 1),
        )
        print(
            f"verify: {count / verify_seconds:,.0f} events/s; inclusion proof at 10 M leaves "
            f"{proofs[10_000_000][0]} bytes, verified in {proofs[10_000_000][1]:.0f} µs; at 100 M "
            f"{proofs[100_000_000][0]} bytes, {proofs[100_000_000][1]:.0f} µs"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    main(parser.parse_args().events)
