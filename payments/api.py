"""Payments as their customers (and staff) see them: read-only."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors
from shop.drf import OrderFilterSerializer, paginated_response, paginated_schema
from shop.viewers import Viewer


class PaymentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField(source="order_id")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.CharField()
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class PaymentListApi(APIView):
    """The reader's payments (staff: everyone's), newest first; ``?order=`` narrows to one order."""

    @extend_schema(
        operation_id="payments_list",
        parameters=[OrderFilterSerializer],
        responses=paginated_schema("PaginatedPayments", PaymentOutputSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        filters = OrderFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        payments = selectors.payment_list(
            viewer=Viewer.of(request.user),
            order_id=filters.validated_data.get("order"),
        )
        return paginated_response(request, self, payments, PaymentOutputSerializer)


class PaymentDetailApi(APIView):
    """One payment; someone else's is 404, as if it did not exist."""

    @extend_schema(operation_id="payments_retrieve", responses=PaymentOutputSerializer)
    def get(self, request: Request, payment_id: int) -> Response:
        payment = selectors.payment_get(payment_id=payment_id, viewer=Viewer.of(request.user))
        return Response(PaymentOutputSerializer(payment).data)
