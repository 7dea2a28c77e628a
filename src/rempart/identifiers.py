"""Validation and synthesis of the identifiers Rempart handles.

Rules (``/work/shared/DOMAIN.md``, section "Identifiers"):

- **NIR**: 15 characters, a 13-character body and a 2-digit key,
  ``key = 97 - (body mod 97)``, with the Corsican departments ``2A`` and ``2B`` read as ``19``
  and ``18`` before the modulo. First digit 1 or 2 (7 or 8 for temporary numbers); birth month
  01-12, 20-42 or 50 (incomplete civil records). ``stdnum.fr.nir`` checks the key but not the
  first digit nor the month, so both are checked here.
- **RPPS**: 11 digits, Luhn. **FINESS**: 9 digits, Luhn (``750712184``, ``690781810``).
- **AM number** (billing number): 9 digits; no check-digit rule is confirmed, so only the format.
- **SIREN/SIRET**: Luhn, with the La Poste exception (handled by ``stdnum.fr.siret``).
- **IBAN**: ISO 13616 mod 97 (schwifty). French (and Monegasque) IBANs also carry a RIB key,
  ``97 - ((89 * bank + 15 * branch + 3 * account) mod 97)``, letters in the account read through
  the RIB table (A-I -> 1-9, J-R -> 1-9, S-Z -> 2-9).
- **BIC**: ISO 9362 structure and a known country (schwifty).

Every failure raises :class:`InvalidIdentifier`, whose reason names the rule and never the value:
a NIR is personal data, and reasons end up in logs and API responses.

The module is pure: no I/O, no clock.
"""

from __future__ import annotations

from schwifty import BIC, IBAN
from schwifty import exceptions as schwifty_errors
from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

__all__ = [
    "InvalidIdentifier",
    "luhn_complete",
    "make_french_iban",
    "make_nir",
    "nir_key",
    "validate_am_number",
    "validate_bic",
    "validate_finess",
    "validate_iban",
    "validate_nir",
    "validate_rpps",
    "validate_siren",
    "validate_siret",
]


class InvalidIdentifier(ValueError):
    """An identifier breaks one of its rules.

    ``reason`` is a short English sentence that never contains the value itself.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- helpers -------------------------------------------------------------------------------------


def _compact(value: object) -> str:
    """Drop whitespace separators and uppercase; refuse anything that is not a string."""
    if not isinstance(value, str):
        raise InvalidIdentifier("must be a string")
    return "".join(value.split()).upper()


def _is_digits(text: str) -> bool:
    # str.isdigit alone accepts "²" or Arabic-Indic digits, which int() and stdnum mishandle.
    return text.isascii() and text.isdigit()


def _is_alnum(text: str) -> bool:
    return text.isascii() and text.isalnum()


def _digits_of_length(value: str, length: int) -> str:
    number = _compact(value)
    if not _is_digits(number):
        raise InvalidIdentifier("must contain only digits")
    if len(number) != length:
        raise InvalidIdentifier(f"must be {length} digits")
    return number


def _luhn_checked(number: str) -> str:
    if not luhn.is_valid(number):
        raise InvalidIdentifier("the check digit does not match")
    return number


# --- NIR -----------------------------------------------------------------------------------------

_NIR_FIRST_DIGITS = "1278"
_CORSICA = {"2A": "19", "2B": "18"}


def _is_valid_month(month: int) -> bool:
    return 1 <= month <= 12 or 20 <= month <= 42 or month == 50


def _check_nir_characters(body: str) -> None:
    """Digits everywhere, except the department (positions 6-7) which may be 2A or 2B."""
    department = body[5:7]
    if not (
        _is_digits(body[:5])
        and _is_digits(body[7:])
        and (_is_digits(department) or department in _CORSICA)
    ):
        raise InvalidIdentifier(
            "must contain only digits, apart from 2A or 2B as a Corsican department"
        )


def nir_key(first13: str) -> int:
    """The 2-digit key of a 13-character NIR body (2A/2B read as 19/18)."""
    body = _compact(first13)
    if len(body) != 13:
        raise InvalidIdentifier("a NIR body must be 13 characters")
    _check_nir_characters(body)
    numeric = body[:5] + _CORSICA.get(body[5:7], body[5:7]) + body[7:]
    return 97 - int(numeric) % 97


def validate_nir(value: str) -> str:
    """Return the NIR without separators, uppercased; raise :class:`InvalidIdentifier`."""
    number = _compact(value)
    if len(number) != 15:
        raise InvalidIdentifier("must be 15 characters")
    _check_nir_characters(number)
    if number[0] not in _NIR_FIRST_DIGITS:
        raise InvalidIdentifier("first digit must be 1, 2, 7 or 8")
    # stdnum accepts any month (13, 00, 99...), hence this check of our own.
    month = number[3:5]
    if not _is_valid_month(int(month)):
        raise InvalidIdentifier("the birth month (characters 4-5) must be 01-12, 20-42 or 50")
    # The key computed here rather than by stdnum.fr.nir (which agrees, see the tests): this
    # runs for every row of a member file, and stdnum's generic clean-up costs ten times more.
    body = number[:5] + _CORSICA.get(number[5:7], number[5:7]) + number[7:13]
    if int(number[13:]) != 97 - int(body) % 97:
        raise InvalidIdentifier("the key does not match")
    return number


def make_nir(sex: int, year: int, month: int, department: str, commune: str, order: int) -> str:
    """Build a valid NIR, key included (for synthetic data). ``year`` is the full year."""
    if sex not in (1, 2, 7, 8):
        raise InvalidIdentifier("sex must be 1, 2, 7 or 8")
    if year < 0:
        raise InvalidIdentifier("year must not be negative")
    if not _is_valid_month(month):
        raise InvalidIdentifier("month must be 1-12, 20-42 or 50")
    department = department.upper()
    if len(department) != 2 or not (_is_digits(department) or department in _CORSICA):
        raise InvalidIdentifier("department must be two digits, 2A or 2B")
    if len(commune) != 3 or not _is_digits(commune):
        raise InvalidIdentifier("commune must be 3 digits")
    if not 1 <= order <= 999:
        raise InvalidIdentifier("order must be between 1 and 999")
    body = f"{sex}{year % 100:02d}{month:02d}{department}{commune}{order:03d}"
    return validate_nir(f"{body}{nir_key(body):02d}")


# --- health-care and company numbers -------------------------------------------------------------


def luhn_complete(digits: str) -> str:
    """Append the Luhn check digit to ``digits`` (to generate synthetic RPPS/FINESS numbers)."""
    if not _is_digits(digits):
        raise InvalidIdentifier("must contain only digits")
    return digits + luhn.calc_check_digit(digits)


def validate_rpps(value: str) -> str:
    """An RPPS number: 11 digits, Luhn."""
    return _luhn_checked(_digits_of_length(value, 11))


def validate_finess(value: str) -> str:
    """A FINESS number: 9 digits, Luhn. stdnum has no FINESS module, hence plain Luhn."""
    return _luhn_checked(_digits_of_length(value, 9))


def validate_am_number(value: str) -> str:
    """An AM (billing) number: 9 digits; no check-digit rule is confirmed, so none is applied."""
    return _digits_of_length(value, 9)


def validate_siren(value: str) -> str:
    """A SIREN: 9 digits, Luhn."""
    number = _digits_of_length(value, 9)
    try:
        return str(stdnum_siren.validate(number))
    except ValidationError:
        raise InvalidIdentifier("the check digit does not match") from None


def validate_siret(value: str) -> str:
    """A SIRET: 14 digits, Luhn on the SIRET and on its SIREN; La Poste's own rule via stdnum."""
    number = _digits_of_length(value, 14)
    try:
        return str(stdnum_siret.validate(number))
    except ValidationError:
        raise InvalidIdentifier("the check digit does not match") from None


# --- bank identifiers ----------------------------------------------------------------------------

# Countries whose BBAN is a French RIB (bank, branch, account, key).
_RIB_COUNTRIES = frozenset({"FR", "MC"})
_RIB_LETTERS = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "12345678912345678923456789",  # S is 2, not 1: the RIB table leaves that slot empty
)


def _rib_key(bank: str, branch: str, account: str) -> int:
    numeric_account = int(account.translate(_RIB_LETTERS))
    return 97 - (89 * int(bank) + 15 * int(branch) + 3 * numeric_account) % 97


def validate_iban(value: str) -> str:
    """Return the IBAN in compact form; French and Monegasque RIB keys are checked too."""
    number = _compact(value)
    # schwifty's own character check uses \d, which also matches non-ASCII digits.
    if not _is_alnum(number):
        raise InvalidIdentifier("must contain only letters and digits")
    has_rib = number[:2] in _RIB_COUNTRIES
    # ``from None`` throughout: schwifty's messages quote the IBAN, and a chained exception
    # would carry it into tracebacks.
    try:
        iban = IBAN(number, validate_bban=has_rib)
    except schwifty_errors.InvalidCountryCode:
        raise InvalidIdentifier("the country code is not an IBAN country") from None
    except schwifty_errors.InvalidLength:
        raise InvalidIdentifier("has the wrong length for its country") from None
    except schwifty_errors.InvalidStructure:
        raise InvalidIdentifier("does not match the IBAN format of its country") from None
    except schwifty_errors.InvalidChecksumDigits:
        raise InvalidIdentifier("the IBAN check digits do not match") from None
    except schwifty_errors.InvalidBBANChecksum:
        raise InvalidIdentifier("the RIB key does not match") from None
    except schwifty_errors.SchwiftyException:
        raise InvalidIdentifier("is not a valid IBAN") from None
    # schwifty picks the RIB algorithm through its bank registry and only warns when a bank maps
    # to none; recomputing the key keeps the check unconditional.
    if has_rib and _rib_key(iban.bank_code, iban.branch_code, iban.account_code) != int(
        iban.national_checksum_digits
    ):
        raise InvalidIdentifier("the RIB key does not match")
    return str(iban)


def make_french_iban(bank: str, branch: str, account: str) -> str:
    """Build a valid FR IBAN (RIB key and IBAN check digits) for synthetic data."""
    if len(bank) != 5 or not _is_digits(bank):
        raise InvalidIdentifier("bank code must be 5 digits")
    if len(branch) != 5 or not _is_digits(branch):
        raise InvalidIdentifier("branch code must be 5 digits")
    account = account.upper()
    if len(account) != 11 or not _is_alnum(account):
        raise InvalidIdentifier("account number must be 11 letters or digits")
    bban = f"{bank}{branch}{account}{_rib_key(bank, branch, account):02d}"
    return validate_iban(str(IBAN.from_bban("FR", bban, allow_invalid=True)))


def validate_bic(value: str) -> str:
    """Return the BIC in compact uppercase form (ISO 9362 structure, known country)."""
    code = _compact(value)
    if not _is_alnum(code):
        raise InvalidIdentifier("must contain only letters and digits")
    try:
        return str(BIC(code))
    except schwifty_errors.InvalidLength:
        raise InvalidIdentifier("must be 8 or 11 characters") from None
    except schwifty_errors.InvalidStructure:
        raise InvalidIdentifier("does not match the BIC format") from None
    except schwifty_errors.InvalidCountryCode:
        raise InvalidIdentifier("the country code is not known") from None
    except schwifty_errors.SchwiftyException:
        raise InvalidIdentifier("is not a valid BIC") from None
