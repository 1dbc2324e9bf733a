"""The safety net under /api/: every error is JSON with a message and a code.

The views and the API's exception handler answer the errors they know about
(``shop.drf.exception_handler``). This middleware, outermost of all, catches the
rest: input no view should see (NUL characters in the path, the query or a header,
a body over the size limit), exceptions a view did not handle (a 500 that says nothing
of its cause), and the HTML pages Django renders for errors raised outside a
view (an unknown route, a bad Host header, a CSRF failure).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from functools import partial
from http import HTTPStatus

from django.conf import settings
from django.core import signals
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from outbox import context
from shop import logs

logger = logging.getLogger("django.request")
security_logger = logging.getLogger("django.security")
access_logger = logging.getLogger("shop.request")

API_PREFIX = "/api/"

CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}


def json_error(
    status: int,
    *,
    message: str | None = None,
    code: str | None = None,
    fields: dict[str, list[str]] | None = None,
) -> JsonResponse:
    """An error response in the API's shape: ``{<field>: [messages], "detail", "code"}``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {
        **(fields or {}),
        "detail": message or f"{phrase}.",
        "code": code or CODES.get(status, phrase.lower().replace(" ", "_")),
    }
    return JsonResponse(body, status=status)


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            return json_error(response.status_code)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path_info.startswith(API_PREFIX):
            return None
        if isinstance(exc, RequestDataTooBig):
            return json_error(413, message="Request body too large.")
        if isinstance(exc, Http404):
            return json_error(404)
        if isinstance(exc, PermissionDenied):
            return json_error(403)
        if isinstance(exc, SuspiciousOperation | BadRequest):
            security_logger.warning("%s: %s", type(exc).__name__, exc)
            return json_error(400)
        # The traceback goes to the log; the client learns nothing of the cause.
        logger.error("Internal Server Error: %s", request.path, exc_info=exc)
        signals.got_request_exception.send(sender=None, request=request)
        return json_error(500, message="Server error.")

    @staticmethod
    def _refuse(request: HttpRequest) -> HttpResponse | None:
        """Input that no view of this API accepts, answered before any view runs."""
        if "\x00" in request.path_info:
            return json_error(404)
        try:
            query = request.GET.lists()
        except SuspiciousOperation as exc:  # e.g. more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS
            security_logger.warning("%s: %s", type(exc).__name__, exc)
            return json_error(400, message=str(exc))
        for name, values in query:
            if "\x00" in name or any("\x00" in value for value in values):
                field = name.replace("\x00", "") or "query"
                return json_error(
                    400,
                    message="Null characters are not allowed.",
                    code="null_character",
                    fields={field: ["Null characters are not allowed."]},
                )
        for key, value in request.META.items():
            if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
                header = key[5:].replace("_", "-").title()
                return json_error(
                    400,
                    message="Null characters are not allowed.",
                    code="null_character",
                    fields={header: ["Null characters are not allowed."]},
                )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, message="Content-Length is not a number.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return json_error(413, message=f"Request body over {limit} bytes.")
        return None


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.startswith("application/json") or "+json" in content_type.split(";")[0]


# What a request id or correlation id taken from a client may look like; anything else is
# replaced by one of our own (a log line must not carry what a client chose to inject).
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapers: their requests are logged at DEBUG, so INFO stays quiet at rest.
_QUIET_PATHS = ("/health/", "/metrics")


def _client_id(value: str | None) -> str | None:
    return value if value and _CLIENT_ID.match(value) else None


def _actor(request: HttpRequest) -> str:
    """Who is acting, asked when an event is published (the API authenticates in the view)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "anonymous"


class RequestContextMiddleware:
    """Gives every request an id, and the events and log lines of the request their context.

    The request id is the client's ``X-Request-ID`` (when it is a plain token) or a new
    one; the correlation id the client's ``X-Correlation-ID`` or the request id. Both
    are returned as response headers. Events published while the request runs carry
    the correlation id and the acting user (``outbox.context``); log lines carry both
    ids (``shop.logs``), and one line per request says how it was answered.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _client_id(request.headers.get("X-Request-ID")) or uuid.uuid4().hex
        correlation_id = _client_id(request.headers.get("X-Correlation-ID")) or request_id
        started = time.perf_counter()
        with (
            logs.request_context(request_id),
            context.caused_by(
                correlation_id=correlation_id, causation_id=None, actor=partial(_actor, request)
            ),
        ):
            response = self.get_response(request)
            level = logging.DEBUG if request.path.startswith(_QUIET_PATHS) else logging.INFO
            if access_logger.isEnabledFor(level):
                access_logger.log(
                    level,
                    "%s %s %s (%.0f ms)",
                    request.method,
                    request.get_full_path()[:500],
                    response.status_code,
                    (time.perf_counter() - started) * 1000,
                    extra={"status": response.status_code, "actor": _actor(request)},
                )
        response["X-Request-ID"] = request_id
        response["X-Correlation-ID"] = correlation_id
        return response

    def process_view(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict[str, object]
    ) -> None:
        # /api/orders/42/...: the lines of the request name the order.
        logs.bind(order_id=kwargs.get("order_id"))
