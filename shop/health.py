"""Health endpoints for load balancers and orchestrators, each answering JSON.

- ``/health/live``: the web process answers (200, always, without touching anything).
- ``/health/ready``: the database and Redis answer, the relay and every consumer
  group have a reader on every partition (or beat polled lately), and nothing is
  far behind (``outbox.health``); 503 with what failed otherwise.
- ``/health/``: the database and Redis only (kept for existing probes).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, JsonResponse

from outbox import health as outbox_health
from outbox.streams import get_redis


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _redis() -> str:
    get_redis().ping()
    return "ok"


def _error(exc: Exception) -> str:
    """``error: Type: the message's first line`` (a driver's message may run on for lines)."""
    first = next(iter(str(exc).strip().splitlines()), "")
    return f"error: {type(exc).__name__}: {first}"


def _run(check: Callable[[], str]) -> str:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a health check reports any failure
        return _error(exc)


def health(request: HttpRequest) -> JsonResponse:
    """Liveness of the two services the shop needs: 200 when both answer, 503 otherwise."""
    checks = {"database": _run(_database), "redis": _run(_redis)}
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


def live(request: HttpRequest) -> JsonResponse:
    """The process answers requests; nothing else is asked."""
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    """Ready to serve the shop: 200, or 503 with ``failing`` saying what is not."""
    checks: dict[str, str] = {"database": _run(_database), "redis": _run(_redis)}
    if checks["database"] == "ok" and checks["redis"] == "ok":
        try:
            checks |= outbox_health.reader_checks()
            checks |= outbox_health.lag_checks()
        except Exception as exc:  # noqa: BLE001 - reported, never a 500
            checks["outbox"] = _error(exc)
    failing = [f"{name}: {value}" for name, value in checks.items() if not value.startswith("ok")]
    return JsonResponse(
        {"status": "ok" if not failing else "failing", "checks": checks, "failing": failing},
        status=200 if not failing else 503,
    )
