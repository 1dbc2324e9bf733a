"""Money: amounts kept to the cent, parsed one way, and written into events as text."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from shop.errors import DomainError

CENT = Decimal("0.01")


def to_cents(amount: Decimal | int) -> Decimal:
    """``amount`` rounded to the cent (half to even, Decimal's default)."""
    return Decimal(amount).quantize(CENT)


def money_text(amount: Decimal | int) -> str:
    """How events carry an amount: a string to the cent, so no float ever rounds it."""
    return str(to_cents(amount))


def money_parse(value: object, *, field: str) -> Decimal:
    """A finite, non-negative amount to the cent; ``DomainError`` on ``field`` otherwise."""
    try:
        amount = Decimal(value)  # type: ignore[arg-type]  # anything else is refused below
        if amount.is_finite() and amount >= 0:
            return to_cents(amount)
    except (InvalidOperation, TypeError, ValueError):
        pass
    raise DomainError(f"{value!r} is not an amount", field=field)
