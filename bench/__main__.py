"""Run every benchmark: `make bench` (or `python -m bench`)."""

from __future__ import annotations

import os

from bench import import_members, integrity, invoices, ledger, payments, scoping

rows = int(os.environ.get("REMPART_BENCH_ROWS", "50000"))
import_members.main(rows, rounds=3, database_url=None)
postgres = os.environ.get("REMPART_BENCH_POSTGRES_URL")
if postgres:
    import_members.main(rows, rounds=3, database_url=postgres)
ledger.main(int(os.environ.get("REMPART_BENCH_EVENTS", "100000")))
integrity.main(rows, rounds=3)
scoping.main(int(os.environ.get("REMPART_BENCH_SCOPING_EVENTS", "10000000")))
invoices.main(int(os.environ.get("REMPART_BENCH_INVOICE_LINES", "50000")), database_url=None)
payments.main(int(os.environ.get("REMPART_BENCH_PAYMENT_LINES", "100000")))
