"""Tests of rempart.identifiers against the DOMAIN.md "Identifiers" rules.

stdnum and schwifty serve as independent oracles where they implement a rule, so that each test
shows what the library checks and what Rempart adds on top.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schwifty import IBAN
from schwifty.exceptions import InvalidBBANChecksum
from stdnum import luhn
from stdnum.fr import nir as stdnum_nir
from stdnum.fr import siret as stdnum_siret

from rempart.identifiers import (
    InvalidIdentifier,
    luhn_complete,
    make_french_iban,
    make_nir,
    nir_key,
    validate_am_number,
    validate_bic,
    validate_finess,
    validate_iban,
    validate_nir,
    validate_rpps,
    validate_siren,
    validate_siret,
)

Validator = Callable[[str], str]

DOMAIN_NIR = "253072B07300470"
VALID_FR_IBAN = "FR1420041010050500013M02606"
VALID_DE_IBAN = "DE89370400440532013000"


def with_key(body: str) -> str:
    """A 15-character NIR whose key is right, whatever else is wrong with the body."""
    return f"{body}{nir_key(body):02d}"


def flip_digit(number: str, index: int) -> str:
    digit = (int(number[index]) + 1) % 10
    return f"{number[:index]}{digit}{number[index + 1 :]}"


def reason_of(validator: Validator, value: str) -> str:
    with pytest.raises(InvalidIdentifier) as caught:
        validator(value)
    return caught.value.reason


# --- NIR -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (DOMAIN_NIR, DOMAIN_NIR),
        ("2 53 07 2B 073 004 70", DOMAIN_NIR),
        ("253072b07300470", DOMAIN_NIR),
        ("295109912611193", "295109912611193"),
    ],
)
def test_validate_nir_accepts_and_normalises(value: str, expected: str) -> None:
    assert validate_nir(value) == expected


@pytest.mark.parametrize("wrong_key", ["69", "71"])
def test_validate_nir_rejects_key_off_by_one(wrong_key: str) -> None:
    assert reason_of(validate_nir, DOMAIN_NIR[:13] + wrong_key) == "the key does not match"


@pytest.mark.parametrize("month", ["00", "13", "19", "43", "49", "51", "99"])
def test_validate_nir_rejects_invalid_month_that_stdnum_accepts(month: str) -> None:
    nir = with_key(f"185{month}75123456")
    assert stdnum_nir.is_valid(nir)  # the key is right: only the month is wrong
    assert reason_of(validate_nir, nir) == (
        "the birth month (characters 4-5) must be 01-12, 20-42 or 50"
    )


@pytest.mark.parametrize("month", ["01", "12", "20", "31", "42", "50"])
def test_validate_nir_accepts_regular_and_incomplete_record_months(month: str) -> None:
    nir = with_key(f"185{month}75123456")
    assert validate_nir(nir) == nir


@pytest.mark.parametrize("department", ["2A", "2B"])
def test_corsican_nir_is_valid_and_agrees_with_stdnum(department: str) -> None:
    nir = make_nir(2, 1953, 7, department, "073", 4)
    assert nir[5:7] == department
    assert validate_nir(nir) == nir
    assert stdnum_nir.is_valid(nir)
    assert nir[13:] == stdnum_nir.calc_check_digits(nir)


def test_make_nir_rebuilds_the_domain_example() -> None:
    assert make_nir(2, 1953, 7, "2B", "073", 4) == DOMAIN_NIR


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("253072B0730047", "must be 15 characters"),
        ("253072B073004700", "must be 15 characters"),
        ("", "must be 15 characters"),
        (
            "25307AB07300470",
            "must contain only digits, apart from 2A or 2B as a Corsican department",
        ),
        (
            "253072C07300470",
            "must contain only digits, apart from 2A or 2B as a Corsican department",
        ),
        (
            "253072B0730047X",
            "must contain only digits, apart from 2A or 2B as a Corsican department",
        ),
        (
            "２53072B07300470",  # a full-width digit: not an ASCII digit
            "must contain only digits, apart from 2A or 2B as a Corsican department",
        ),
    ],
)
def test_validate_nir_rejects_malformed(value: str, reason: str) -> None:
    assert reason_of(validate_nir, value) == reason


@pytest.mark.parametrize("first", ["0", "3", "4", "5", "6", "9"])
def test_validate_nir_rejects_bad_first_digit(first: str) -> None:
    nir = with_key(f"{first}850775123456")
    assert stdnum_nir.is_valid(nir)  # stdnum does not check the first digit
    assert reason_of(validate_nir, nir) == "first digit must be 1, 2, 7 or 8"


@pytest.mark.parametrize("first", ["7", "8"])
def test_validate_nir_accepts_temporary_numbers(first: str) -> None:
    nir = with_key(f"{first}850775123456")
    assert validate_nir(nir) == nir


def test_validate_nir_rejects_non_string() -> None:
    with pytest.raises(InvalidIdentifier, match="must be a string"):
        validate_nir(253072207300470)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body", ["1850775123456", "253072A073004", "253072B073004", "2000000000000"]
)
def test_nir_key_agrees_with_stdnum(body: str) -> None:
    assert f"{nir_key(body):02d}" == stdnum_nir.calc_check_digits(body + "00")


def test_nir_key_reads_corsica_as_19_and_18() -> None:
    assert nir_key("253072A073004") == 97 - 2530719073004 % 97
    assert nir_key("253072B073004") == 97 - 2530718073004 % 97 == 70


@pytest.mark.parametrize("body", ["25307207300", "2530720730041X", "25307X2073004"])
def test_nir_key_rejects_malformed_body(body: str) -> None:
    with pytest.raises(InvalidIdentifier):
        nir_key(body)


@pytest.mark.parametrize(
    ("sex", "year", "month", "department", "commune", "order"),
    [
        (1, 1985, 7, "75", "056", 123),
        (2, 2003, 12, "2a", "004", 1),
        (1, 1900, 1, "99", "352", 999),
        (2, 1947, 20, "13", "055", 42),
        (8, 2024, 50, "97", "411", 7),
    ],
)
def test_make_nir_round_trips_through_validate_nir(
    sex: int, year: int, month: int, department: str, commune: str, order: int
) -> None:
    nir = make_nir(sex, year, month, department, commune, order)
    assert validate_nir(nir) == nir
    assert stdnum_nir.is_valid(nir)
    assert nir[0] == str(sex)
    assert nir[1:3] == f"{year % 100:02d}"
    assert nir[3:5] == f"{month:02d}"
    assert nir[5:7] == department.upper()
    assert nir[7:10] == commune
    assert nir[10:13] == f"{order:03d}"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"sex": 3}, "sex must be 1, 2, 7 or 8"),
        ({"year": -1}, "year must not be negative"),
        ({"month": 13}, "month must be 1-12, 20-42 or 50"),
        ({"month": 0}, "month must be 1-12, 20-42 or 50"),
        ({"department": "2C"}, "department must be two digits, 2A or 2B"),
        ({"department": "750"}, "department must be two digits, 2A or 2B"),
        ({"commune": "56"}, "commune must be 3 digits"),
        ({"commune": "05A"}, "commune must be 3 digits"),
        ({"order": 0}, "order must be between 1 and 999"),
        ({"order": 1000}, "order must be between 1 and 999"),
    ],
)
def test_make_nir_rejects_invalid_parts(kwargs: dict[str, object], reason: str) -> None:
    parts: dict[str, object] = {
        "sex": 1,
        "year": 1985,
        "month": 7,
        "department": "75",
        "commune": "056",
        "order": 123,
    }
    parts.update(kwargs)
    with pytest.raises(InvalidIdentifier) as caught:
        make_nir(**parts)  # type: ignore[arg-type]
    assert caught.value.reason == reason


# --- Luhn, RPPS, FINESS, AM number ---------------------------------------------------------------


@pytest.mark.parametrize(("digits", "expected"), [("7894", "78949"), ("75071218", "750712184")])
def test_luhn_complete_appends_the_check_digit(digits: str, expected: str) -> None:
    assert luhn_complete(digits) == expected


@pytest.mark.parametrize("digits", ["", "12a4", "１２"])
def test_luhn_complete_rejects_non_digits(digits: str) -> None:
    with pytest.raises(InvalidIdentifier, match="must contain only digits"):
        luhn_complete(digits)


RPPS = luhn_complete("1000123456")


def test_validate_rpps_accepts_a_generated_number() -> None:
    assert len(RPPS) == 11
    assert validate_rpps(RPPS) == RPPS
    assert validate_rpps(f" {RPPS[:5]} {RPPS[5:]} ") == RPPS


@pytest.mark.parametrize("index", range(11))
def test_validate_rpps_rejects_any_flipped_digit(index: int) -> None:
    assert reason_of(validate_rpps, flip_digit(RPPS, index)) == "the check digit does not match"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (RPPS[:10], "must be 11 digits"),
        (RPPS + "0", "must be 11 digits"),
        (RPPS[:10] + "X", "must contain only digits"),
    ],
)
def test_validate_rpps_rejects_malformed(value: str, reason: str) -> None:
    assert reason_of(validate_rpps, value) == reason


@pytest.mark.parametrize("value", ["750712184", "690781810"])
def test_validate_finess_accepts_known_numbers(value: str) -> None:
    assert validate_finess(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("750712185", "the check digit does not match"),
        ("750712194", "the check digit does not match"),
        ("690781811", "the check digit does not match"),
        ("75071218", "must be 9 digits"),
        ("7507121840", "must be 9 digits"),
        ("2A0712184", "must contain only digits"),
    ],
)
def test_validate_finess_rejects(value: str, reason: str) -> None:
    assert reason_of(validate_finess, value) == reason


@pytest.mark.parametrize(
    ("value", "expected"), [("123456789", "123456789"), ("12 345 6789", "123456789")]
)
def test_validate_am_number_accepts_nine_digits_without_check_digit(
    value: str, expected: str
) -> None:
    assert validate_am_number(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("12345678", "must be 9 digits"),
        ("1234567890", "must be 9 digits"),
        ("12345678A", "must contain only digits"),
    ],
)
def test_validate_am_number_rejects_wrong_format(value: str, reason: str) -> None:
    assert reason_of(validate_am_number, value) == reason


# --- SIREN, SIRET --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("732829320", "732829320"), ("356 000 000", "356000000")]
)
def test_validate_siren_accepts(value: str, expected: str) -> None:
    assert validate_siren(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("732829321", "the check digit does not match"),
        ("73282932", "must be 9 digits"),
        ("73282932A", "must contain only digits"),
    ],
)
def test_validate_siren_rejects(value: str, reason: str) -> None:
    assert reason_of(validate_siren, value) == reason


@pytest.mark.parametrize(
    "value",
    [
        "73282932000074",
        "35600000000048",  # La Poste head office: plain Luhn
        "35600000000100",  # a La Poste establishment: digit sum multiple of 5, Luhn fails
    ],
)
def test_validate_siret_accepts_including_la_poste(value: str) -> None:
    assert validate_siret(value) == value
    assert stdnum_siret.is_valid(value)


def test_la_poste_siret_is_valid_only_through_the_exception() -> None:
    assert not luhn.is_valid("35600000000100")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("73282932000079", "the check digit does not match"),
        ("35600000000101", "the check digit does not match"),  # La Poste, digit sum 16
        ("35600000000049", "the check digit does not match"),
        ("7328293200007", "must be 14 digits"),
        ("7328293200007A", "must contain only digits"),
    ],
)
def test_validate_siret_rejects(value: str, reason: str) -> None:
    assert reason_of(validate_siret, value) == reason


# --- IBAN, BIC -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VALID_FR_IBAN, VALID_FR_IBAN),
        ("fr14 2004 1010 0505 0001 3m02 606", VALID_FR_IBAN),
        (VALID_DE_IBAN, VALID_DE_IBAN),
        ("DE89 3704 0044 0532 0130 00", VALID_DE_IBAN),
    ],
)
def test_validate_iban_accepts_and_compacts(value: str, expected: str) -> None:
    assert validate_iban(value) == expected


def iban_with_wrong_rib_key() -> str:
    """A French IBAN whose IBAN check digits are right for a BBAN whose RIB key is wrong."""
    bban = VALID_FR_IBAN[4:-2] + "07"  # the right key is 06
    iban = str(IBAN.from_bban("FR", bban, allow_invalid=True))
    IBAN(iban)  # schwifty's default validation (no BBAN check) accepts it
    return iban


def test_schwifty_checks_the_rib_key_only_when_asked() -> None:
    iban = iban_with_wrong_rib_key()
    assert IBAN(iban).is_valid
    with pytest.raises(InvalidBBANChecksum):
        IBAN(iban, validate_bban=True)


def test_validate_iban_rejects_french_iban_with_wrong_rib_key() -> None:
    assert reason_of(validate_iban, iban_with_wrong_rib_key()) == "the RIB key does not match"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("FR1520041010050500013M02606", "the IBAN check digits do not match"),
        ("DE88370400440532013000", "the IBAN check digits do not match"),
        ("DE8937040044053201300", "has the wrong length for its country"),
        ("DE8937040044053201300A", "does not match the IBAN format of its country"),
        ("XX89370400440532013000", "the country code is not an IBAN country"),
        ("DE89-3704-0044-0532-0130-00", "must contain only letters and digits"),
        ("DE89370400440532013００", "must contain only letters and digits"),
    ],
)
def test_validate_iban_rejects(value: str, reason: str) -> None:
    assert reason_of(validate_iban, value) == reason


@pytest.mark.parametrize(
    ("bank", "branch", "account"),
    [
        ("20041", "01005", "0500013M026"),
        ("30004", "00001", "12345678901"),
        ("10096", "18000", "ABCDEFGHSTZ"),
        ("99999", "99999", "zzzzzzzzzzz"),
    ],
)
def test_make_french_iban_is_valid_for_us_and_for_schwifty(
    bank: str, branch: str, account: str
) -> None:
    iban = make_french_iban(bank, branch, account)
    assert validate_iban(iban) == iban
    assert IBAN(iban, validate_bban=True).bban[:21] == f"{bank}{branch}{account.upper()}"
    # schwifty computes the RIB key on its own when generating: both must agree
    assert iban == str(
        IBAN.generate("FR", bank_code=bank, branch_code=branch, account_code=account.upper())
    )


def test_make_french_iban_rebuilds_a_known_iban() -> None:
    assert make_french_iban("20041", "01005", "0500013M026") == VALID_FR_IBAN


@pytest.mark.parametrize(
    ("bank", "branch", "account", "reason"),
    [
        ("2004", "01005", "0500013M026", "bank code must be 5 digits"),
        ("2004A", "01005", "0500013M026", "bank code must be 5 digits"),
        ("20041", "0100", "0500013M026", "branch code must be 5 digits"),
        ("20041", "01005", "0500013M02", "account number must be 11 letters or digits"),
        ("20041", "01005", "0500013M02-", "account number must be 11 letters or digits"),
    ],
)
def test_make_french_iban_rejects_invalid_parts(
    bank: str, branch: str, account: str, reason: str
) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        make_french_iban(bank, branch, account)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("BNPAFRPP", "BNPAFRPP"),
        ("BNPAFRPPXXX", "BNPAFRPPXXX"),
        ("deut de ff 500", "DEUTDEFF500"),
    ],
)
def test_validate_bic_accepts_and_compacts(value: str, expected: str) -> None:
    assert validate_bic(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("BNPAFRP", "must be 8 or 11 characters"),
        ("BNPAFRPPXX", "must be 8 or 11 characters"),
        ("BNPA1RPP", "does not match the BIC format"),
        ("BNPAXXPP", "the country code is not known"),
        ("BNPA-FR-PP", "must contain only letters and digits"),
    ],
)
def test_validate_bic_rejects(value: str, reason: str) -> None:
    assert reason_of(validate_bic, value) == reason


# --- reasons never leak the value ----------------------------------------------------------------

INVALID_INPUTS: list[tuple[Validator, str]] = [
    (validate_nir, DOMAIN_NIR[:13] + "71"),
    (validate_nir, with_key("1851375123456")),
    (validate_nir, with_key("3850775123456")),
    (validate_nir, "25307AB07300470"),
    (validate_nir, "25307220730047"),
    (validate_rpps, flip_digit(RPPS, 3)),
    (validate_rpps, RPPS[:10]),
    (validate_finess, "750712185"),
    (validate_am_number, "12345678A"),
    (validate_siren, "732829321"),
    (validate_siret, "73282932000079"),
    (validate_iban, "FR1520041010050500013M02606"),
    (validate_iban, iban_with_wrong_rib_key()),
    (validate_iban, "DE8937040044053201300A"),
    (validate_iban, "XX89370400440532013000"),
    (validate_bic, "BNPA1RPP"),
    (validate_bic, "BNPAXXPP"),
]


@pytest.mark.parametrize(("validator", "value"), INVALID_INPUTS)
def test_reason_never_contains_the_value(validator: Validator, value: str) -> None:
    reason = reason_of(validator, value)
    assert value not in reason
    assert value.upper() not in reason
    assert str(InvalidIdentifier(reason)) == reason


VALIDATORS: list[Validator] = [
    validate_nir,
    validate_rpps,
    validate_finess,
    validate_am_number,
    validate_siren,
    validate_siret,
    validate_iban,
    validate_bic,
]


@settings(database=None, max_examples=300)  # no example database written into the tree
@given(
    validator=st.sampled_from(VALIDATORS),
    value=st.one_of(
        st.text(alphabet="0123456789", min_size=5, max_size=30),
        st.text(alphabet="0123456789ABFRDEX ", min_size=5, max_size=30),
        st.text(min_size=5, max_size=30),
    ),
)
def test_no_reason_ever_contains_the_value(validator: Validator, value: str) -> None:
    error: InvalidIdentifier | None = None
    try:
        validator(value)
    except InvalidIdentifier as caught:
        error = caught
    if error is None:
        return  # a random value that happens to be valid
    assert value not in error.reason
    compact = "".join(value.split()).upper()
    # short fragments such as "15" legitimately appear in reasons ("must be 15 characters")
    assert len(compact) < 5 or compact not in error.reason
    # no chained library error either: schwifty's messages quote the value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


@settings(max_examples=500, database=None)
@given(
    first=st.sampled_from("1278"),
    year=st.integers(0, 99),
    month=st.sampled_from([*range(1, 13), *range(20, 43), 50]),
    department=st.sampled_from(["75", "2A", "2B", "01", "99"]),
    rest=st.integers(0, 999_999),
    key=st.integers(0, 99),
)
def test_validate_nir_accepts_exactly_what_stdnum_accepts_for_valid_months(
    first: str, year: int, month: int, department: str, rest: int, key: int
) -> None:
    nir = f"{first}{year:02d}{month:02d}{department}{rest:06d}{key:02d}"
    try:
        validate_nir(nir)
        ours = True
    except InvalidIdentifier:
        ours = False
    assert ours == stdnum_nir.is_valid(nir)
