"""The catalogue (anyone) and product and stock management (staff)."""

from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, services
from inventory.models import Product
from inventory.services import MAX_STOCK_CHANGE

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ProductOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    available = serializers.IntegerField()


class StaffProductOutputSerializer(ProductOutputSerializer):
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()


def _render(request: Request, product: Product) -> dict:
    serializer = StaffProductOutputSerializer if request.user.is_staff else ProductOutputSerializer
    return serializer(product).data


class ProductListApi(APIView):
    """GET: the catalogue with availability (anyone). POST: create a product (staff)."""

    class InputSerializer(serializers.Serializer):
        sku = serializers.RegexField(
            SKU_PATTERN,
            max_length=64,
            error_messages={"invalid": "Use letters, digits, '.', '_' and '-' only."},
        )
        name = serializers.CharField(max_length=200)
        price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
        stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK_CHANGE)

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAdminUser()]
        return [AllowAny()]

    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.product_list(), request, view=self)
        serializer = (
            StaffProductOutputSerializer if request.user.is_staff else ProductOutputSerializer
        )
        return paginator.get_paginated_response(serializer(page, many=True).data)

    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(**serializer.validated_data)
        return Response(_render(request, product), status=status.HTTP_201_CREATED)


class ProductDetailApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request, sku: str) -> Response:
        return Response(_render(request, selectors.product_get(sku=sku)))


class ProductRestockApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK_CHANGE)

    def post(self, request: Request, sku: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.stock_restock(sku=sku, **serializer.validated_data)
        return Response(_render(request, product))
