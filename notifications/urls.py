from django.urls import path

from notifications import api

urlpatterns = [
    path("notifications/", api.NotificationListApi.as_view(), name="notification-list"),
    path(
        "notifications/<int:notification_id>/",
        api.NotificationDetailApi.as_view(),
        name="notification-detail",
    ),
]
