"""Reads of products and reservations."""

from django.db.models import QuerySet

from inventory.models import Product
from shop.errors import NotFound


def product_list() -> QuerySet[Product]:
    return Product.objects.order_by("sku")


def product_get(*, sku: str) -> Product:
    """The product with this SKU; raises ``NotFound``."""
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        raise NotFound(f"No product with SKU {sku!r}.")
    return product
