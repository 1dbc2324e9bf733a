"""The contract payments keeps with a payment provider, shaped like a real one's API.

Every call that moves money takes an idempotency key: calling again with the
same key does not move it again, it answers what the first call did. A call
can fail three ways:

- ``ProviderTimeout``: no answer in time. The provider may or may not have
  done it; ``status`` with the same key tells, and a retry with the same key
  is safe whatever it did.
- ``ProviderError``: the provider answered that it did not do it (it is
  unavailable, say). Asking again later may work.
- ``ProviderMisuse``: a programming error (the call was made inside a database
  transaction, or a key was reused for another operation). Never retried.

A refused operation (a declined card) is not an error: it is an ``Outcome``
with ``succeeded=False`` and a reason that is safe to show the customer.

``settings.PAYMENTS_PROVIDER`` names the implementation (a dotted path to a
class taking no arguments); the simulated provider is the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class ProviderTimeout(Exception):
    """No answer in time: the outcome is unknown until ``status`` is asked."""


class ProviderError(Exception):
    """The provider answered that it did nothing; asking again later may work."""


class ProviderMisuse(Exception):
    """The provider was called in a way it refuses (a bug on the caller's side)."""


@dataclass(frozen=True)
class Outcome:
    """What the provider did with one idempotency key."""

    succeeded: bool
    reference: str = ""
    failure_reason: str = ""


class PaymentProvider(Protocol):
    def charge(
        self, *, idempotency_key: str, token: str, amount: Decimal, currency: str
    ) -> Outcome:
        """Charge ``amount`` to the card behind ``token``, once per key."""
        ...

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: Decimal) -> Outcome:
        """Refund ``amount`` of the charge ``charge_reference``, once per key."""
        ...

    def status(self, *, idempotency_key: str) -> Outcome | None:
        """What the charge or refund with this key came to; None if nothing was done."""
        ...


@cache
def _provider_class(path: str) -> type:
    return import_string(path)


def get_provider() -> PaymentProvider:
    """The configured provider (``settings.PAYMENTS_PROVIDER``)."""
    return _provider_class(settings.PAYMENTS_PROVIDER)()
