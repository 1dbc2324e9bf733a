"""API plumbing shared by every app: the exception handler, pagination, the order filter."""

from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from shop.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain errors to HTTP; leave everything else to DRF."""
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body = {exc.field: [exc.message], "code": exc.code}
        return Response(body, status=exc.status_code)
    return drf_exception_handler(exc, context)


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
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class OrderFilterSerializer(serializers.Serializer):
    """``?order=ID`` on the lists that belong to orders (payments, shipments)."""

    order = serializers.IntegerField(required=False, min_value=1)
