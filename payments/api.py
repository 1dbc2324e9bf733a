"""Payments as their customers (and staff) see them: read-only."""

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors


class PaymentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField(source="order_id")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.CharField()
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class PaymentListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        order = serializers.IntegerField(required=False)

    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        payments = selectors.payment_list(
            viewer_id=request.user.pk,
            is_staff=request.user.is_staff,
            order_id=filters.validated_data.get("order"),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(payments, request, view=self)
        return paginator.get_paginated_response(PaymentOutputSerializer(page, many=True).data)


class PaymentDetailApi(APIView):
    def get(self, request: Request, payment_id: int) -> Response:
        payment = selectors.payment_get(
            payment_id=payment_id, viewer_id=request.user.pk, is_staff=request.user.is_staff
        )
        return Response(PaymentOutputSerializer(payment).data)
