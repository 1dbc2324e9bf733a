"""Products are edited through the services (so every change publishes its events);
reservations are history and read-only."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from inventory import services
from inventory.models import Product, Reservation, ReservationLine
from shop.admin import ReadOnlyAdmin, ReadOnlyInline
from shop.errors import DomainError


class ProductChangeForm(forms.ModelForm):
    price = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0)

    class Meta:
        model = Product
        fields = ["name", "price"]


class ProductAddForm(ProductChangeForm):
    # Stock is set only when adding: afterwards it changes by restocking, orders and shipping.
    stock = forms.IntegerField(
        min_value=0, max_value=services.MAX_STOCK_CHANGE, initial=0, help_text="Units on hand."
    )

    class Meta:
        model = Product
        fields = ["sku", "name", "price"]


class RestockForm(forms.Form):
    quantity = forms.IntegerField(
        min_value=1,
        max_value=services.MAX_STOCK_CHANGE,
        help_text="Units to add to each selected product.",
    )


class AvailabilityFilter(admin.SimpleListFilter):
    title = "availability"
    parameter_name = "availability"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("in_stock", "In stock"), ("sold_out", "Sold out")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "in_stock":
            return queryset.filter(on_hand__gt=F("reserved"))
        if self.value() == "sold_out":
            return queryset.filter(on_hand__lte=F("reserved"))
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "on_hand", "reserved", "available", "updated_at"]
    list_filter = [AvailabilityFilter]
    search_fields = ["sku", "name"]
    ordering = ["sku"]
    actions = ["restock"]

    def get_form(
        self, request: HttpRequest, obj: Product | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        kwargs["form"] = ProductAddForm if obj is None else ProductChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Product | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("sku", "name", "price", "stock")
        return ("sku", "name", "price", "on_hand", "reserved", "available", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Product | None = None) -> list[str]:
        if obj is None:
            return []
        return ["sku", "on_hand", "reserved", "available", "updated_at"]

    @admin.display(description="available")
    def available(self, obj: Product) -> int:
        return obj.available

    def has_delete_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        # Reservations and other apps' replicas refer to SKUs: products are never deleted.
        return False

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.product_update(sku=obj.sku, name=data["name"], price=data["price"])
        else:
            created = services.product_create(
                sku=data["sku"], name=data["name"], price=data["price"], stock=data["stock"]
            )
            obj.pk = created.pk
        obj.refresh_from_db()

    @admin.action(description="Restock selected products", permissions=["change"])
    def restock(self, request: HttpRequest, queryset: QuerySet[Product]) -> HttpResponse | None:
        form = RestockForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            quantity = form.cleaned_data["quantity"]
            skus = list(queryset.order_by("sku").values_list("sku", flat=True))
            for sku in skus:
                try:
                    services.stock_restock(sku=sku, quantity=quantity)
                except DomainError as exc:
                    self.message_user(request, f"{sku}: {exc.message}", messages.ERROR)
                    return None
            self.message_user(
                request, f"Added {quantity} unit(s) to {', '.join(skus)}.", messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Restock products",
            "opts": self.model._meta,
            "products": queryset.order_by("sku"),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/inventory/product/restock.html", context)


class ReservationLineInline(ReadOnlyInline):
    model = ReservationLine
    fields = ["sku", "quantity"]
    readonly_fields = ["sku", "quantity"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "status", "failure_reason", "created_at", "updated_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["=order_id", "lines__sku"]
    readonly_fields = ["order_id", "status", "failure_reason", "created_at", "updated_at"]
    inlines = [ReservationLineInline]
    date_hierarchy = "created_at"
