"""Incident response: containment, breach scoping, notification, integrity attestation."""
