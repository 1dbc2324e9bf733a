from django.urls import path

from orders import api

app_name = "orders"

urlpatterns = [
    path("orders/", api.OrderCollectionApi.as_view(), name="list"),
    path("orders/<int:order_id>/", api.OrderDetailApi.as_view(), name="detail"),
    path("orders/<int:order_id>/cancel/", api.OrderCancelApi.as_view(), name="cancel"),
    path("orders/<int:order_id>/saga/", api.OrderSagaApi.as_view(), name="saga"),
]
