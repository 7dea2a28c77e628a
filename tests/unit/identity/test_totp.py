"""TOTP (RFC 6238): the RFC's own test vector, drift, and single use of each time step."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pyotp

from rempart.identity import totp

SECRET = totp.new_secret()
NOW = datetime(2026, 1, 29, 9, 0, 15, tzinfo=UTC)


def test_rfc_6238_vector() -> None:
    # RFC 6238 appendix B, SHA-1, T = 59 s, 8 digits: 94287082 (we use 6: its last six digits).
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert pyotp.TOTP(secret, digits=8).at(59) == "94287082"
    assert totp.code_at(secret, datetime.fromtimestamp(59, UTC)) == "287082"


def test_a_code_is_accepted_once_then_refused() -> None:
    code = totp.code_at(SECRET, NOW)
    step = totp.accepted_step(SECRET, code, NOW, last_step=None)
    assert step == int(NOW.timestamp()) // 30
    assert totp.accepted_step(SECRET, code, NOW, last_step=step) is None
    assert totp.accepted_step(SECRET, code, NOW + timedelta(seconds=20), last_step=step) is None


def test_one_step_of_drift_is_tolerated_and_no_more() -> None:
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, NOW - timedelta(seconds=30)), NOW, None)
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, NOW + timedelta(seconds=30)), NOW, None)
    assert (
        totp.accepted_step(SECRET, totp.code_at(SECRET, NOW - timedelta(seconds=90)), NOW, None)
        is None
    )


def test_an_older_code_is_refused_after_a_newer_one() -> None:
    newer = totp.accepted_step(SECRET, totp.code_at(SECRET, NOW), NOW, None)
    older = totp.code_at(SECRET, NOW - timedelta(seconds=30))
    assert totp.accepted_step(SECRET, older, NOW, last_step=newer) is None


def test_malformed_codes_are_refused() -> None:
    for code in ("", "12345", "1234567", "abcdef", "12 456"):
        assert totp.accepted_step(SECRET, code, NOW, None) is None


def test_the_provisioning_uri_names_the_issuer_and_account() -> None:
    uri = totp.provisioning_uri(SECRET, "marie@pharmacie.example")
    assert uri.startswith("otpauth://totp/Rempart:marie%40pharmacie.example?")
    assert f"secret={SECRET}" in uri
