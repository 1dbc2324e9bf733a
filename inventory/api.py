"""The catalogue (anyone) and product and stock management (staff)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, services
from inventory.models import Product
from inventory.services import MAX_STOCK_CHANGE
from shop.api import paginated_response, paginated_schema

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ProductOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    available = serializers.IntegerField()


class StaffProductOutputSerializer(ProductOutputSerializer):
    """What staff see: the stock levels behind ``available`` too."""

    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()


def _output_serializer(request: Request) -> type[ProductOutputSerializer]:
    return StaffProductOutputSerializer if request.user.is_staff else ProductOutputSerializer


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
        responses=paginated_schema("PaginatedProducts", StaffProductOutputSerializer(many=True)),
        description="Staff also see on_hand and reserved.",
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
        responses=StaffProductOutputSerializer,
        description="Staff also see on_hand and reserved.",
    )
    def get(self, request: Request, sku: str) -> Response:
        product: Product = selectors.product_get(sku=sku)
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
        product = services.stock_restock(sku=sku, **serializer.validated_data)
        return Response(StaffProductOutputSerializer(product).data)
