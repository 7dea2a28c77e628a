"""The password policy of NIST SP 800-63B-4: long, not common, not about us, never truncated."""

from __future__ import annotations

import pytest

from rempart.identity.password_rules import MAX_LENGTH, MIN_LENGTH, password_problem


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("elevenchars", "at least 12"),
        ("x" * (MAX_LENGTH + 1), "never cut"),
        ("123456789012", "sequential"),
        ("abcdefghijklm", "sequential"),
        ("zyxwvutsrqpo", "sequential"),
        ("aaaaaaaaaaaa", "repeated"),
        ("passwordpassword", "pattern repeated"),
        ("abcabcabcabc", "pattern repeated"),
        ("qwertyuiopasdfgh", None),
        ("MonRempartAMoi!", "service's name"),
        ("jean.dupont-1975", "e-mail name"),
    ],
)
def test_refused_passwords_say_why(password: str, reason: str | None) -> None:
    problem = password_problem(password, ["jean.dupont", "jean", "dupont"])
    if reason is None:
        assert problem is None
    else:
        assert problem is not None
        assert reason in problem
        assert password not in problem


@pytest.mark.parametrize("common", ["1qaz2wsx3edc", "qazwsxedcrfv", "leavemealone", "123456qwerty"])
def test_common_passwords_of_twelve_characters_or_more_are_refused(common: str) -> None:
    problem = password_problem(common)
    assert problem == "is one of the most common passwords; choose another"


@pytest.mark.parametrize(
    "good",
    [
        "correct horse battery staple",
        "Tr0ub4dor&3-extended",
        "le chat dort sur le radiateur",
        "ñandú-über-ßtraße",
    ],
)
def test_long_unusual_passwords_are_accepted_without_composition_rules(good: str) -> None:
    assert password_problem(good, ["marie"]) is None


def test_the_length_bounds_are_exact() -> None:
    assert password_problem("Zq8#mN2$vL5!") is None
    assert password_problem("Zq8#mN2$vL5") is not None
    assert password_problem("Zq8#mN2$vL5!" * 21 + "abcd") is None  # 256
    assert MIN_LENGTH == 12
