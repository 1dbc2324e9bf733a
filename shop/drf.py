"""API plumbing shared by every app: the exception handler, pagination, the order filter.

Every error body has ``detail`` (a message for people) and ``code`` (one for
programs); a validation error also has a list of messages under each field
name that was wrong (``non_field_errors`` for the body as a whole).
"""

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from shop.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain errors and DRF's errors to HTTP, each body with ``detail`` and ``code``.

    Anything else is left to ``shop.middleware.ApiErrorMiddleware`` (a 500).
    """
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body = {exc.field: [exc.message], **body}
        return Response(body, status=exc.status_code)
    # Django's own 404 and 403 (a view's get_object_or_404, an unknown ?format=) as DRF's.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _error_body(exc)
    return response


def _error_body(exc: exceptions.APIException) -> dict[str, Any]:
    detail, codes = exc.detail, exc.get_codes()
    if isinstance(detail, dict):
        body: dict[str, Any] = dict(detail)
        first = next(iter(detail.values()), None)
        message = _first_message(first) if first is not None else "Invalid input."
        field = next(iter(detail), "")
        body["detail"] = f"{field}: {message}" if field != "non_field_errors" else message
        body["code"] = "invalid"
        return body
    if isinstance(detail, list):
        return {
            "detail": " ".join(str(item) for item in detail) or "Invalid input.",
            "code": next(iter(codes), "invalid") if isinstance(codes, list) else "invalid",
        }
    return {"detail": str(detail), "code": codes if isinstance(codes, str) else exc.default_code}


def _first_message(errors: Any) -> str:
    """The first message in a (possibly nested) structure of validation errors."""
    while isinstance(errors, dict | list) and errors:
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    return str(errors) if errors not in ({}, []) else "Invalid input."


def paginated_schema(name: str, item: serializers.Serializer) -> serializers.Serializer:
    """The OpenAPI shape of a page of ``item``: ``{count, next, previous, results}``."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


def paginated_response(
    request: Request,
    view: APIView,
    rows: Iterable[Any],
    serializer: type[serializers.BaseSerializer],
) -> Response:
    """One page of ``rows`` with the project's pagination, rendered by ``serializer``."""
    pagination: Any = api_settings.DEFAULT_PAGINATION_CLASS  # a class, typed as its dotted name
    paginator = pagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class OrderFilterSerializer(serializers.Serializer):
    """``?order=ID`` on the lists that belong to orders (payments, shipments)."""

    order = serializers.IntegerField(required=False, min_value=1)


_SUFFIXES = ("Api", "API", "View")


def view_name(view: APIView) -> str:
    """A view's name as a resource (DRF's VIEW_NAME_FUNCTION): "Orders", "Order", "Order cancel".

    A view's own ``name`` wins; otherwise the class name without its "Api" or "View"
    suffix, a "Collection" or "List" the plural of what it lists, a "Detail" the thing.
    """
    explicit = getattr(view, "name", None)
    if explicit:
        return str(explicit)
    name = view.__class__.__name__
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name != suffix:
            name = name[: -len(suffix)]
            break
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name) or [name]
    if len(words) > 1 and words[-1] in ("Collection", "List"):
        words = [*words[:-2], _plural(words[-2])]
    elif len(words) > 1 and words[-1] == "Detail":
        words = words[:-1]
    text = " ".join([words[0], *(w if w.isupper() else w.lower() for w in words[1:])])
    view_suffix = getattr(view, "suffix", None)  # "List", "Instance" from a router
    return f"{text} {view_suffix.lower()}" if view_suffix else text


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word if word.endswith("s") else word + "s"
