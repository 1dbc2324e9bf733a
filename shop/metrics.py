"""Prometheus metrics at ``/metrics``: the outbox's, and every HTTP request by view and status.

The endpoint is not public: it answers a staff user's session, or a request
carrying ``Authorization: Bearer <METRICS_TOKEN>`` (a scraper), and 401 anyone
else. With ``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` sets it), the web's
and the worker's processes add up.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from outbox.metrics import scrape_registry

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by view, method and status.",
    ["view", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by view.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class MetricsMiddleware:
    """Counts and times every request under the name of the view that answered it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.url_name or "") if match is not None else ""
        view = view or "unmatched"
        HTTP_REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        HTTP_SECONDS.labels(view).observe(time.perf_counter() - started)
        return response


def _allowed(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip(), token)
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics in Prometheus's text format, for staff or the scraper's token."""
    if not _allowed(request):
        response = HttpResponse(
            "metrics are for staff, or a scraper with the METRICS_TOKEN bearer token\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
