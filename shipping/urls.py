from django.urls import path

from shipping import api

urlpatterns = [
    path("shipments/", api.ShipmentListApi.as_view(), name="shipment-list"),
    path("shipments/<int:shipment_id>/", api.ShipmentDetailApi.as_view(), name="shipment-detail"),
    path(
        "shipments/<int:shipment_id>/dispatch/",
        api.ShipmentDispatchApi.as_view(),
        name="shipment-dispatch",
    ),
]
