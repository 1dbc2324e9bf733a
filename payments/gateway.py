"""A simulated card gateway: deterministic outcomes, no network, no card data.

Test tokens select the outcome, as with real gateways' sandboxes:

- ``tok_visa``: the charge succeeds;
- ``tok_chargeDeclined``: the card is declined;
- any other token: the gateway does not know it.

Any amount over ``CHARGE_LIMIT`` is refused whatever the token. A charge made
with an idempotency key gets a reference derived from it, so retrying the same
charge names the same charge, as a real gateway's idempotency keys do.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal

CHARGE_LIMIT = Decimal("10000.00")
CARD_SUCCEEDS = "tok_visa"
CARD_DECLINED = "tok_chargeDeclined"

REASON_DECLINED = "card declined"
REASON_OVER_LIMIT = "amount over limit"
REASON_UNKNOWN_CARD = "unknown payment token"
REASON_INVALID_AMOUNT = "invalid amount"
REASON_UNKNOWN_CHARGE = "unknown charge"


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str = ""
    failure_reason: str = ""


@dataclass(frozen=True)
class RefundResult:
    succeeded: bool
    reference: str = ""
    failure_reason: str = ""


def _reference(prefix: str, key: str | None) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest() if key else uuid.uuid4().hex
    return f"{prefix}_{digest[:24]}"


def charge(token: str, amount: Decimal, *, idempotency_key: str | None = None) -> ChargeResult:
    """Charge ``amount`` to the card behind ``token``."""
    if token not in (CARD_SUCCEEDS, CARD_DECLINED):
        return ChargeResult(False, failure_reason=REASON_UNKNOWN_CARD)
    if not amount.is_finite() or amount < 0:
        return ChargeResult(False, failure_reason=REASON_INVALID_AMOUNT)
    if amount > CHARGE_LIMIT:
        return ChargeResult(False, failure_reason=REASON_OVER_LIMIT)
    if token == CARD_DECLINED:
        return ChargeResult(False, failure_reason=REASON_DECLINED)
    return ChargeResult(True, reference=_reference("ch", idempotency_key))


def refund(reference: str) -> RefundResult:
    """Refund the whole of the charge ``reference``."""
    if not reference.startswith("ch_"):
        return RefundResult(False, failure_reason=REASON_UNKNOWN_CHARGE)
    return RefundResult(True, reference=_reference("re", reference))
