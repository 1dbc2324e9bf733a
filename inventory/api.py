"""The catalogue (anyone) and product and stock management (staff)."""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, services
from inventory.models import SKU_MAX_LENGTH, Product
from inventory.services import MAX_STOCK_CHANGE
from shop.drf import paginated_response, paginated_schema
from shop.errors import NotFound

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


@extend_schema_serializer(component_name="Product")
class ProductOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    available = serializers.IntegerField()


@extend_schema_serializer(component_name="StaffProduct")
class StaffProductOutputSerializer(ProductOutputSerializer):
    """What staff see: the stock levels behind ``available`` too."""

    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()


class _ExactProductSchema(OpenApiSerializerExtension):
    """The public shape has exactly its four fields, so it and the staff shape never overlap."""

    target_class = ProductOutputSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


def _product_for_audience(*, many: bool) -> PolymorphicProxySerializer:
    """The schema of what a reader gets: the public shape, or the staff one for staff."""
    return PolymorphicProxySerializer(
        component_name="ProductForAudience",
        serializers=[ProductOutputSerializer, StaffProductOutputSerializer],
        resource_type_field_name=None,
        many=many,
    )


AUDIENCE_NOTE = (
    "Anonymous readers and customers get `Product`; staff get `StaffProduct`, "
    "which adds on_hand and reserved."
)


def _output_serializer(request: Request) -> type[ProductOutputSerializer]:
    return StaffProductOutputSerializer if request.user.is_staff else ProductOutputSerializer


def _sku(sku: str) -> str:
    """The SKU from a URL; one that no product can have (a NUL, too long) is a 404 at once."""
    if "\x00" in sku or len(sku) > SKU_MAX_LENGTH:
        raise NotFound(f"No product with SKU {sku!r}.")
    return sku


class ProductListApi(APIView):
    """``GET`` the catalogue with availability (anyone); ``POST`` a new product (staff)."""

    class InputSerializer(serializers.Serializer):
        sku = serializers.RegexField(
            SKU_PATTERN,
            max_length=64,
            error_messages={"invalid": "Use letters, digits, '.', '_' and '-' only."},
        )
        name = serializers.CharField(max_length=200)
        price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
        stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK_CHANGE)

        class Meta:
            ref_name = "ProductCreateInput"

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAdminUser()]
        return [AllowAny()]

    @extend_schema(
        operation_id="products_list",
        responses=paginated_schema("PaginatedProducts", _product_for_audience(many=True)),
        description=AUDIENCE_NOTE,
    )
    def get(self, request: Request) -> Response:
        return paginated_response(
            request, self, selectors.product_list(), _output_serializer(request)
        )

    @extend_schema(
        operation_id="products_create",
        request=InputSerializer,
        responses={201: StaffProductOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(**serializer.validated_data)
        return Response(StaffProductOutputSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="products_retrieve",
        responses=_product_for_audience(many=False),
        description=AUDIENCE_NOTE,
    )
    def get(self, request: Request, sku: str) -> Response:
        product: Product = selectors.product_get(sku=_sku(sku))
        return Response(_output_serializer(request)(product).data)


class ProductRestockApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK_CHANGE)

        class Meta:
            ref_name = "ProductRestockInput"

    @extend_schema(
        operation_id="products_restock",
        request=InputSerializer,
        responses=StaffProductOutputSerializer,
    )
    def post(self, request: Request, sku: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.stock_restock(sku=_sku(sku), **serializer.validated_data)
        return Response(StaffProductOutputSerializer(product).data)
