"""Rate limits on the shared cache (Redis), so every web process and host counts together.

A limit is ``COUNT/PERIOD`` (``settings.RATELIMITS``), counted in fixed windows
of PERIOD: one cache key per (limit, identity, window), created with ``add``
(SET NX) and counted with ``incr`` (INCRBY), both atomic in Redis, so concurrent
requests on several processes never count the same slot twice. Over the limit
is DRF's ``Throttled``: 429 with ``Retry-After`` (seconds until the window ends).

Identities are hashed before they become keys. The client address comes from
``client_address``, which trusts X-Forwarded-For only from ``TRUSTED_PROXIES``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from shop.rates import Rate

logger = logging.getLogger(__name__)


def rate(scope: str) -> Rate:
    """The configured rate of a limit (``settings.RATELIMITS[scope]``)."""
    return _parse_cached(settings.RATELIMITS[scope])


@lru_cache(maxsize=64)
def _parse_cached(text: str) -> Rate:
    return Rate.parse(text)


def _now() -> float:
    """The clock of the windows (tests stand it still or move it)."""
    return time.time()


def _key(scope: str, identity: str, window: int) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}:{window}"


@dataclass(frozen=True)
class Hit:
    """One counted request: its key, so it can be refunded, and whether it went over."""

    key: str
    retry_after: int | None  # seconds until the window ends, when over the limit


def hit(scope: str, identity: str) -> Hit | None:
    """Count one request of ``identity`` against the limit ``scope``.

    Returns ``None`` when limits are off or the cache is unreachable (limits fail
    open: the shop keeps serving, and the error is logged).
    """
    if not settings.RATELIMIT_ENABLED:
        return None
    limit = rate(scope)
    now = _now()
    window = int(now // limit.period_s)
    key = _key(scope, identity, window)
    # The key outlives its window a little, so a slow request cannot recreate it without expiry.
    timeout = limit.period_s * 2
    try:
        cache.add(key, 0, timeout=timeout)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=timeout)
            count = 1
    except Exception:
        logger.exception("rate limit %s not counted: the cache failed", scope)
        return None
    if count <= limit.count:
        return Hit(key=key, retry_after=None)
    return Hit(key=key, retry_after=max(1, math.ceil((window + 1) * limit.period_s - now)))


def refund(counted: Hit) -> None:
    """Take back one counted request (it turned out not to be the kind the limit counts)."""
    try:
        cache.decr(counted.key)
    except ValueError:
        pass  # the window is gone already
    except Exception:
        logger.exception("rate limit refund failed: the cache failed")


def check(scope: str, identity: str) -> Hit | None:
    """Count one request; raise ``Throttled`` (429) when it is over the limit."""
    counted = hit(scope, identity)
    if counted is not None and counted.retry_after is not None:
        raise Throttled(wait=counted.retry_after)
    return counted


@contextmanager
def counting_failures(scope: str, identity: str) -> Iterator[None]:
    """Count the block against the limit only when it raises (e.g. a failed login).

    The attempt is counted before the block runs, so concurrent attempts cannot
    slip past the limit together, and refunded when the block succeeds.
    """
    counted = check(scope, identity)
    yield
    if counted is not None:
        refund(counted)


@contextmanager
def counting_successes(scope: str, identity: str) -> Iterator[None]:
    """Count the block against the limit only when it succeeds (e.g. an account created)."""
    counted = check(scope, identity)
    try:
        yield
    except BaseException:
        if counted is not None:
            refund(counted)
        raise


# --- the client address -------------------------------------------------------


@lru_cache(maxsize=8)
def _trusted_networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(request: HttpRequest) -> str:
    """The address of the client, as a rate limit identity.

    ``REMOTE_ADDR``, unless it is one of ``TRUSTED_PROXIES``: then X-Forwarded-For
    is read from the right (each proxy appends the address it saw), skipping
    trusted proxies, and the first other address is the client. Entries left of
    it are whatever the client sent and are never read, so forging the header
    gains nothing. IPv6 clients are counted by their /64 network, since one host
    commonly holds a whole /64.
    """
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
    address = _parse_ip(request.META.get("REMOTE_ADDR", ""))
    if address is None:
        return request.META.get("REMOTE_ADDR", "") or "unknown"

    def trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip.version == net.version and ip in net for net in networks)

    if networks and trusted(address):
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        for hop in reversed(hops):
            parsed = _parse_ip(hop)
            if parsed is None:
                break  # garbage: stay with the last proxy that we trust
            address = parsed
            if not trusted(parsed):
                break
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# --- DRF throttles ------------------------------------------------------------


class RateLimit(BaseThrottle):
    """A DRF throttle that counts every request of ``methods`` against ``scope``."""

    scope: ClassVar[str]
    methods: ClassVar[tuple[str, ...]] = ("POST",)

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def identity(self, request: Any) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method not in self.methods:
            return True
        identity = self.identity(request)
        if identity is None:
            return True
        counted = hit(self.scope, identity)
        self.retry_after = None if counted is None else counted.retry_after
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after


class AddressRateLimit(RateLimit):
    def identity(self, request: Any) -> str | None:
        return client_address(request)


class UserRateLimit(RateLimit):
    def identity(self, request: Any) -> str | None:
        user = request.user
        return str(user.pk) if user.is_authenticated else None


class LoginAddressLimit(AddressRateLimit):
    scope = "login_address"


class SignUpAddressLimit(AddressRateLimit):
    scope = "signup_address"


class OrderAddressLimit(AddressRateLimit):
    scope = "order_address"


class OrderUserLimit(UserRateLimit):
    scope = "order_user"
