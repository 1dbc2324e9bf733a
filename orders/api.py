"""The orders REST API: place, list, view and cancel orders.

Views translate HTTP to one service or selector call; ``shop.drf.exception_handler``
turns ``shop.errors`` into 400/404/409.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import saga, selectors, services
from orders.models import Order
from shop import logs, ratelimit
from shop.drf import paginated_response, paginated_schema
from shop.errors import DomainError
from shop.viewers import Viewer

IDEMPOTENCY_HEADER = "Idempotency-Key"


class StrictCharField(serializers.CharField):
    """A string, and only a string: numbers are not silently turned into text."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer, and only an integer: not "3", 3.0 or true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class LineOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    quantity = serializers.IntegerField()


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    cancel_reason = serializers.CharField()
    cancel_reason_code = serializers.CharField()
    lines = LineOutputSerializer(many=True, source="lines.all")
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TimelineOutputSerializer(serializers.Serializer):
    type = serializers.CharField(source="event_type")
    occurred_at = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # "data" is added here: declared on the class it would hide ``Serializer.data``.
        return {**super().get_fields(), "data": serializers.JSONField()}


class OrderDetailOutputSerializer(OrderOutputSerializer):
    """An order with its timeline, which the view passes in the context (a separate read)."""

    timeline = serializers.SerializerMethodField()

    @extend_schema_field(TimelineOutputSerializer(many=True))
    def get_timeline(self, order: Order) -> list[dict[str, Any]]:
        return [TimelineOutputSerializer(entry).data for entry in self.context["timeline"]]


def _render_detail(order: Order) -> dict[str, Any]:
    timeline = selectors.order_timeline(order_id=order.pk)
    return OrderDetailOutputSerializer(order, context={"timeline": timeline}).data


class OrderCollectionApi(APIView):
    """``GET`` lists the reader's orders; ``POST`` places one. Two operations, one URL."""

    # Placing is rate limited per customer and per client address; listing is not.
    throttle_classes = [ratelimit.OrderUserLimit, ratelimit.OrderAddressLimit]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Order.Status.choices, required=False)

    class PlaceInputSerializer(serializers.Serializer):
        """An order request's shape; ``order_place`` enforces its rules (counts, ranges, repeats)."""

        class LineInputSerializer(serializers.Serializer):
            sku = StrictCharField(
                help_text=f"1 to {services.MAX_SKU_LENGTH} characters; each sku once per order"
            )
            quantity = StrictIntegerField(help_text=f"1 to {services.MAX_QUANTITY}")

        lines = serializers.ListField(
            child=LineInputSerializer(), help_text=f"1 to {services.MAX_LINES} lines"
        )
        payment_token = StrictCharField(
            required=False, help_text=f"1 to {services.MAX_PAYMENT_TOKEN_LENGTH} characters"
        )

    @extend_schema(
        operation_id="orders_list",
        summary="List orders",
        description="Your orders, newest first (staff see every order); paginated.",
        parameters=[FilterSerializer],
        responses=paginated_schema("PaginatedOrders", OrderOutputSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = selectors.order_list(
            viewer=Viewer.of(request.user), status=filters.validated_data.get("status")
        )
        return paginated_response(request, self, orders, OrderOutputSerializer)

    @extend_schema(
        operation_id="orders_place",
        summary="Place an order",
        description="Places an order (PENDING) priced from the catalogue; stock and payment "
        "are then handled asynchronously and the status moves to CONFIRMED or CANCELLED. "
        "Each sku may appear once per order; payment_token defaults to tok_visa.",
        request=PlaceInputSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Repeat a request safely: the same key and body return the same "
                "order (200); the same key with another body is refused (409).",
            )
        ],
        responses={201: OrderOutputSerializer, 200: OrderOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.PlaceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            placed = services.order_place(
                customer_id=Viewer.of(request.user).user_id,
                lines=[
                    services.LineIn(sku=line["sku"], quantity=line["quantity"])
                    for line in data.validated_data["lines"]
                ],
                payment_token=data.validated_data.get(
                    "payment_token", services.DEFAULT_PAYMENT_TOKEN
                ),
                idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            )
        except DomainError as exc:
            if exc.field != "idempotency_key":
                raise
            # Name what the client sent: the header.
            raise DomainError(exc.message, field=IDEMPOTENCY_HEADER) from exc
        logs.bind(order_id=placed.order.pk)
        return Response(
            OrderOutputSerializer(placed.order).data,
            status=status.HTTP_201_CREATED if placed.created else status.HTTP_200_OK,
            headers={"Location": reverse("orders:detail", args=[placed.order.pk])},
        )


class OrderDetailApi(APIView):
    @extend_schema(
        operation_id="orders_retrieve",
        summary="View an order",
        description="An order with its timeline: every event about it, in commit order.",
        responses=OrderDetailOutputSerializer,
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.order_get(order_id=order_id, viewer=Viewer.of(request.user))
        return Response(_render_detail(order))


class OrderCancelApi(APIView):
    @extend_schema(
        operation_id="orders_cancel",
        summary="Cancel an order",
        description="A PENDING order is cancelled at once (200, CANCELLED). A CONFIRMED one is "
        "CANCELLING until shipping answers (202, CANCELLING; asking again is also 202): then "
        "it ends CANCELLED (shipment cancelled, payment refunded, stock released) or, if it "
        "had been dispatched already, SHIPPED, and the customer is told which. Follow the "
        "status on GET /api/orders/{order_id}/. 409 when it is SHIPPED or CANCELLED.",
        request=None,
        responses={200: OrderDetailOutputSerializer, 202: OrderDetailOutputSerializer},
    )
    def post(self, request: Request, order_id: int) -> Response:
        viewer = Viewer.of(request.user)
        order = services.order_cancel(
            order_id=order_id,
            customer_id=viewer.customer_id,
            reason=services.STAFF_CANCEL_REASON
            if viewer.is_staff
            else services.CUSTOMER_CANCEL_REASON,
        )
        pending = order.status == Order.Status.CANCELLING
        return Response(
            _render_detail(order),
            status=status.HTTP_202_ACCEPTED if pending else status.HTTP_200_OK,
        )


class SagaStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField(help_text="forward, or compensation (undoes a forward step)")
    state = serializers.CharField(help_text="done, failed, waiting, skipped or not needed")
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)


class SagaOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    steps = SagaStepSerializer(many=True)


class SagaSvgRenderer(BaseRenderer):
    """The saga as a picture (``?format=svg`` or ``Accept: image/svg+xml``)."""

    media_type = "image/svg+xml"
    format = "svg"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        context = renderer_context or {}
        steps = context.get("saga_steps")
        if steps is None:  # an error: say it in the picture
            detail = data.get("detail", "error") if isinstance(data, dict) else "error"
            return saga.render_error_svg(str(detail)).encode()
        return saga.render_svg(data, steps).encode()


class OrderSagaApi(APIView):
    """Staff only: each step of an order's saga with its state, start, end and duration."""

    permission_classes = [IsAdminUser]
    renderer_classes = [JSONRenderer, SagaSvgRenderer]

    @extend_schema(
        operation_id="orders_saga",
        summary="The saga of an order, step by step (JSON, or SVG with ?format=svg)",
        description="Reserve, charge, confirm, ship, notify and the compensations (cancel "
        "the shipment, release the stock, refund), each with its state (done, failed, "
        "waiting, skipped, not needed), when it started and ended and how long it took, "
        "from the order's timeline. Staff only.",
        responses={200: SagaOutputSerializer},
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.order_get(order_id=order_id, viewer=Viewer.of(request.user))
        steps = saga.saga_steps(order, selectors.order_timeline(order_id=order.pk))
        self.saga_steps = steps
        body = {"id": order.pk, "status": order.status, "steps": [s.as_dict() for s in steps]}
        return Response(SagaOutputSerializer(body).data)

    def get_renderer_context(self) -> dict[str, Any]:
        context = super().get_renderer_context()
        context["saga_steps"] = getattr(self, "saga_steps", None)
        return context
