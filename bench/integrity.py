"""`rempart integrity verify` rate: business rows checked per second (MAC, journal, ledger).

The baseline, measured in the same run on the same database, reads the same rows of the same
tables without checking anything: the ratio is what the verification adds to a full read.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from bench.common import median, record, timed
from bench.data import member_file
from bench.import_members import encrypted_import, fresh_platform
from rempart.db import transaction
from rempart.integrity.verify import protected_tables, verify_integrity
from rempart.platform import Platform


def read_everything(platform: Platform) -> int:
    rows = 0
    with transaction(platform.sessions) as session:
        for table in protected_tables():
            for _ in session.execute(select(table).execution_options(yield_per=5000)):
                rows += 1
    return rows


def main(rows: int, rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    try:
        platform = fresh_platform(work / "home", None)
        encrypted_import(platform, member_file(rows))
        total = read_everything(platform)
        verified, plain = [], []
        for n in range(rounds + 1):  # round 0 warms the caches and is not counted
            t_verify = timed(lambda: verify_integrity(platform))
            t_read = timed(lambda: read_everything(platform))
            if n:
                verified.append(total / t_verify)
                plain.append(total / t_read)
                print(
                    f"round {n}: verify {total / t_verify:,.0f} rows/s, read {total / t_read:,.0f}"
                )
        report = verify_integrity(platform)
        assert report.intact, report.problems
        record(
            "integrity_verify_sqlite",
            median(verified),
            "rows/s",
            median(plain),
            "a national registry (about 100 M rows) verified overnight",
            beneficiaries=rows,
            rows=total,
            rounds=rounds,
        )
        platform.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="beneficiaries to import")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.rows, args.rounds)
