from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shop import api, health, views
from shop.metrics import metrics

urlpatterns = [
    path("", views.landing, name="landing"),
    path("admin/", admin.site.urls),
    path("health/", health.health, name="health"),
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, name="health-ready"),
    path("metrics", metrics, name="metrics"),
    path("api-auth/", include("shop.auth_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", api.ApiRootApi.as_view(), name="api-root"),
    path("api/", include("shop.api_urls")),
    path("api/", include("outbox.urls")),
    path("api/", include("orders.urls")),
    path("api/", include("inventory.urls")),
    path("api/", include("payments.urls")),
    path("api/", include("shipping.urls")),
    path("api/", include("notifications.urls")),
]
