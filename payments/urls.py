from django.urls import path

from payments import api

app_name = "payments"

urlpatterns = [
    path("payments/", api.PaymentListApi.as_view(), name="payment-list"),
    path("payments/<int:payment_id>/", api.PaymentDetailApi.as_view(), name="payment-detail"),
]
