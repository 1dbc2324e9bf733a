"""The shipments API: customers see their own shipments; staff see all and dispatch."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shipping import selectors, services
from shipping.models import Shipment
from shop.drf import OrderFilterSerializer, paginated_response, paginated_schema
from shop.viewers import Viewer


@extend_schema_serializer(component_name="Shipment")
class ShipmentOutputSerializer(serializers.ModelSerializer):
    order = serializers.IntegerField(source="order_id")

    class Meta:
        model = Shipment
        fields = ["id", "order", "status", "tracking_number", "created_at", "dispatched_at"]


class ShipmentListApi(APIView):
    permission_classes = [IsAuthenticated]

    OutputSerializer = ShipmentOutputSerializer

    @extend_schema(
        operation_id="shipments_list",
        parameters=[OrderFilterSerializer],
        responses=paginated_schema("PaginatedShipments", ShipmentOutputSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        filters = OrderFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        shipments = selectors.shipment_list(
            viewer=Viewer.of(request.user),
            order_id=filters.validated_data.get("order"),
        )
        return paginated_response(request, self, shipments, self.OutputSerializer)


class ShipmentDetailApi(APIView):
    permission_classes = [IsAuthenticated]
    OutputSerializer = ShipmentOutputSerializer

    @extend_schema(operation_id="shipments_retrieve", responses=ShipmentOutputSerializer)
    def get(self, request: Request, shipment_id: int) -> Response:
        shipment = selectors.shipment_get(viewer=Viewer.of(request.user), shipment_id=shipment_id)
        return Response(self.OutputSerializer(shipment).data)


class ShipmentDispatchApi(APIView):
    permission_classes = [IsAdminUser]
    OutputSerializer = ShipmentOutputSerializer

    @extend_schema(
        operation_id="shipments_dispatch",
        request=None,
        responses=ShipmentOutputSerializer,
        description="Staff only. 409 when the shipment is cancelled or dispatched already.",
    )
    def post(self, request: Request, shipment_id: int) -> Response:
        shipment = services.shipment_dispatch(shipment_id=shipment_id)
        return Response(self.OutputSerializer(shipment).data)
