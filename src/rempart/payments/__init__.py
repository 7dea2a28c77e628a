"""Payments: runs, SEPA files, remittances, settlement with the insurers, bank-details changes."""
