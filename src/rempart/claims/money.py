"""Money arithmetic of DOMAIN.md rule 6: integer cents, percentages in Decimal, half-up rounding.

Amounts are held as integer cents; a percentage of an amount is an exact ``Decimal`` number of
cents, and only a line's final amount is rounded, half-up, to a whole cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from rempart.registry.plan_format import format_money

_ONE_CENT = Decimal(1)


def percent_of(percent: int, cents: int) -> Decimal:
    """``percent`` % of ``cents``, exactly: 200 % of 3150 -> 6300; 33 % of 1001 -> 330.33."""
    return Decimal(cents) * percent / 100


def round_cents(amount: Decimal) -> int:
    """A Decimal number of cents rounded half-up to a whole cent: 2.5 -> 3, 330.49 -> 330."""
    return int(amount.quantize(_ONE_CENT, rounding=ROUND_HALF_UP))


def euros(amount: int | Decimal) -> str:
    """Cents as euros for an explanation: 4095 -> ``"40.95"`` (a Decimal is rounded first)."""
    return format_money(amount if isinstance(amount, int) else round_cents(amount))
