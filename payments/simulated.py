"""A simulated payment provider: deterministic outcomes and faults, no network, no card data.

It keeps its ledger where a remote provider would, apart from its callers: in
its own table (``SimulatedProviderOperation``), written in its own transaction
and committed before it answers. It refuses to be called inside a database
transaction, as no network call should be, so a crash of the caller at any
point leaves the ledger telling the truth, and ``status`` answers from it.

Test tokens select the outcome, as with real providers' sandboxes:

- ``tok_visa``: the charge succeeds;
- ``tok_chargeDeclined``: the card is declined;
- ``tok_timeoutBeforeCharge``: the first call with a key times out before
  charging (nothing happened); the next one charges;
- ``tok_timeoutAfterCharge``: the first call with a key charges, then times
  out (the answer is lost); the next one, or ``status``, says it was charged;
- ``tok_timeoutBeforeRefund`` / ``tok_timeoutAfterRefund``: the charge
  succeeds; the first refund call with a key times out before / after refunding;
- ``tok_providerError``: every charge call answers an error (nothing charged);
- any other token: the provider does not know it (the charge is refused).

Any amount over ``CHARGE_LIMIT`` is refused whatever the token. References are
derived from the idempotency key, so the same key always names the same charge.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.db import IntegrityError, connection, transaction

from payments.models import SimulatedProviderOperation as Operation
from payments.provider import Outcome, ProviderError, ProviderMisuse, ProviderTimeout
from shop.db import Lookup, insert, save_fields

CHARGE_LIMIT = Decimal("10000.00")
CARD_SUCCEEDS = "tok_visa"
CARD_DECLINED = "tok_chargeDeclined"
TIMEOUT_BEFORE_CHARGE = "tok_timeoutBeforeCharge"
TIMEOUT_AFTER_CHARGE = "tok_timeoutAfterCharge"
TIMEOUT_BEFORE_REFUND = "tok_timeoutBeforeRefund"
TIMEOUT_AFTER_REFUND = "tok_timeoutAfterRefund"
PROVIDER_ERROR = "tok_providerError"
KNOWN_TOKENS = frozenset(
    {
        CARD_SUCCEEDS,
        CARD_DECLINED,
        TIMEOUT_BEFORE_CHARGE,
        TIMEOUT_AFTER_CHARGE,
        TIMEOUT_BEFORE_REFUND,
        TIMEOUT_AFTER_REFUND,
        PROVIDER_ERROR,
    }
)

REASON_DECLINED = "card declined"
REASON_OVER_LIMIT = "amount over limit"
REASON_UNKNOWN_CARD = "unknown payment token"
REASON_INVALID_AMOUNT = "invalid amount"
REASON_UNKNOWN_CHARGE = "unknown charge"
REASON_REFUND_AMOUNT = "refund amount differs from the charge"
REASON_REFUNDED_ALREADY = "charge refunded already"

_OPERATION = Lookup(Operation, "idempotency_key")
_OPERATION_FOR_UPDATE = Lookup(Operation, "idempotency_key", lock="update")
_OPERATION_FIELDS = [f.name for f in Operation._meta.concrete_fields if not f.primary_key]


def _reference(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _outcome(operation: Operation) -> Outcome:
    return Outcome(
        succeeded=operation.status == Operation.Status.SUCCEEDED,
        reference=operation.reference,
        failure_reason=operation.failure_reason,
    )


class SimulatedProvider:
    """The default ``PAYMENTS_PROVIDER``: see the module's docstring for its test tokens."""

    def charge(
        self, *, idempotency_key: str, token: str, amount: Decimal, currency: str
    ) -> Outcome:
        def decide(operation: Operation) -> Exception | None:
            if token == TIMEOUT_BEFORE_CHARGE and operation.calls == 1:
                return ProviderTimeout("the provider did not answer (nothing was charged)")
            if token == PROVIDER_ERROR:
                return ProviderError("the provider is unavailable")
            reason = self._charge_refusal(token, amount)
            self._settle(operation, reason, _reference("ch", idempotency_key))
            if token == TIMEOUT_AFTER_CHARGE and operation.calls == 1:
                return ProviderTimeout("the provider did not answer (it had charged)")
            return None

        return self._call(
            idempotency_key,
            Operation.Kind.CHARGE,
            {"token": token, "amount": amount, "currency": currency},
            decide,
        )

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: Decimal) -> Outcome:
        charged: Operation | None = None

        def decide(operation: Operation) -> Exception | None:
            if charged is not None and charged.token == TIMEOUT_BEFORE_REFUND:
                if operation.calls == 1:
                    return ProviderTimeout("the provider did not answer (nothing was refunded)")
            reason = self._refund_refusal(charged, amount, idempotency_key)
            self._settle(operation, reason, _reference("re", idempotency_key))
            if charged is not None and charged.token == TIMEOUT_AFTER_REFUND:
                if operation.calls == 1:
                    return ProviderTimeout("the provider did not answer (it had refunded)")
            return None

        def lock_charge() -> dict[str, object]:
            nonlocal charged
            # Locked: two refunds of one charge (with different keys) take turns.
            charged = (
                Operation.objects.select_for_update()
                .filter(
                    kind=Operation.Kind.CHARGE,
                    reference=charge_reference,
                    status=Operation.Status.SUCCEEDED,
                )
                .first()
            )
            return {
                "token": charged.token if charged is not None else "",
                "amount": amount,
                "currency": charged.currency if charged is not None else "",
                "charge_reference": charge_reference,
            }

        return self._call(idempotency_key, Operation.Kind.REFUND, lock_charge, decide)

    def status(self, *, idempotency_key: str) -> Outcome | None:
        self._outside_transaction()
        operation = _OPERATION.get(idempotency_key)
        if operation is None or operation.status == Operation.Status.NOT_DONE:
            return None
        return _outcome(operation)

    # ------------------------------------------------------------------------------------

    @staticmethod
    def _outside_transaction() -> None:
        if connection.in_atomic_block:
            raise ProviderMisuse(
                "the payment provider is a remote service: call it outside any database "
                "transaction, and record what it said in a new one"
            )

    def _call(self, key: str, kind: str, fields, decide) -> Outcome:
        """One call with ``key``: find (locked) or start its ledger row, decide, write it once.

        ``decide`` sees the row when nothing was done for the key yet; it may
        settle it, and returns the fault to raise once the row is committed.
        """
        self._outside_transaction()
        try:
            return self._call_once(key, kind, fields, decide)
        except IntegrityError:
            # A concurrent first call with the same key inserted it first: look again.
            return self._call_once(key, kind, fields, decide)

    @staticmethod
    def _call_once(key: str, kind: str, fields, decide) -> Outcome:
        # The provider's own bookkeeping, committed before it answers.
        with transaction.atomic():
            values = fields() if callable(fields) else fields
            operation = _OPERATION_FOR_UPDATE.get(key)
            if operation is None:
                operation = Operation(idempotency_key=key, kind=kind, **values)
            elif (operation.kind, operation.amount, operation.token) != (
                kind,
                values["amount"],
                values["token"],
            ):
                raise ProviderMisuse(f"idempotency key {key} was used for another call")
            operation.calls += 1
            fault = decide(operation) if operation.status == Operation.Status.NOT_DONE else None
            if operation.pk is None:
                insert(operation)
            else:
                save_fields(operation, _OPERATION_FIELDS)
        if fault is not None:
            raise fault
        return _outcome(operation)

    @staticmethod
    def _settle(operation: Operation, refusal: str, reference: str) -> None:
        if refusal:
            operation.status = Operation.Status.REFUSED
            operation.failure_reason = refusal
        else:
            operation.status = Operation.Status.SUCCEEDED
            operation.reference = reference

    @staticmethod
    def _charge_refusal(token: str, amount: Decimal) -> str:
        if token not in KNOWN_TOKENS:
            return REASON_UNKNOWN_CARD
        if not amount.is_finite() or amount < 0:
            return REASON_INVALID_AMOUNT
        if amount > CHARGE_LIMIT:
            return REASON_OVER_LIMIT
        if token == CARD_DECLINED:
            return REASON_DECLINED
        return ""

    @staticmethod
    def _refund_refusal(charged: Operation | None, amount: Decimal, key: str) -> str:
        if charged is None:
            return REASON_UNKNOWN_CHARGE
        if amount != charged.amount:
            return REASON_REFUND_AMOUNT
        refunded = (
            Operation.objects.filter(
                kind=Operation.Kind.REFUND,
                charge_reference=charged.reference,
                status=Operation.Status.SUCCEEDED,
            )
            .exclude(idempotency_key=key)
            .exists()
        )
        return REASON_REFUNDED_ALREADY if refunded else ""
