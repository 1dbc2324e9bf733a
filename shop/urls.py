from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shop import health
from shop.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health.health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include("shop.api_urls")),
    path("api/", include("outbox.urls")),
    path("api/", include("orders.urls")),
    path("api/", include("inventory.urls")),
    path("api/", include("payments.urls")),
    path("api/", include("shipping.urls")),
    path("api/", include("notifications.urls")),
]
