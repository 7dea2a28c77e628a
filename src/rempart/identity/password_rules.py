"""What a password must be (NIST SP 800-63B-4 §3.1.1.2): long, not common, not about us.

Pure. No composition rules (they make passwords weaker and users unhappy); a length floor, a
ceiling that refuses rather than truncates, a blocklist of the 30,000 most common passwords
(the list zxcvbn ships), and words from the context (the service, the user's e-mail name).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
# argon2 hashes any length; the ceiling only refuses megabyte "passwords" sent to exhaust the
# CPU, explicitly: a password is never silently cut.
MAX_LENGTH = 256
SERVICE_WORDS = ("rempart",)
_COMMON = frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, context: Iterable[str] = ()) -> str | None:
    """Why ``password`` is refused, or None. The reason never repeats the password."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters long (longer ones are refused, never cut)"
    lowered = password.lower()
    if lowered in _COMMON:
        return "is one of the most common passwords; choose another"
    if _is_run(lowered):
        return "is a repeated or sequential run of characters"
    if _is_repetition(lowered):
        return "is a short pattern repeated; choose something longer and less regular"
    words = [w.lower() for w in (*SERVICE_WORDS, *context) if len(w) >= 4]
    if any(w in lowered for w in words):
        return "must not contain the service's name or your e-mail name"
    return None


def _is_run(text: str) -> bool:
    """One character repeated, or a sequence such as 'abcdefghijkl' or '987654321098'."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    return len(set(text)) == 1 or steps <= {1, -9} or steps <= {-1, 9}


def _is_repetition(text: str) -> bool:
    """``passwordpassword``, ``abcabcabcabc``: a shorter string said again and again."""
    n = len(text)
    return any(n % p == 0 and text == text[:p] * (n // p) for p in range(1, n // 2 + 1))
