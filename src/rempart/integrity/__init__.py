"""Integrity of business rows: a keyed MAC on every row, a journal of every write anchored in
the ledger, and the verification that names what was altered outside the application."""
