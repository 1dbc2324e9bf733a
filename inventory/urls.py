from django.urls import path

from inventory import api

app_name = "inventory"

urlpatterns = [
    path("products/", api.ProductListApi.as_view(), name="product-list"),
    path("products/<str:sku>/", api.ProductDetailApi.as_view(), name="product-detail"),
    path("products/<str:sku>/restock/", api.ProductRestockApi.as_view(), name="product-restock"),
]
