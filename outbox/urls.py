from django.urls import path

from outbox import api

urlpatterns = [
    path("outbox/status/", api.StatusView.as_view(), name="outbox-status"),
    path("outbox/events/", api.EventListView.as_view(), name="outbox-events"),
    path("outbox/dead-letters/", api.DeadLetterListView.as_view(), name="outbox-dead-letters"),
    path(
        "outbox/dead-letters/<int:pk>/retry/",
        api.DeadLetterRetryView.as_view(),
        name="outbox-dead-letter-retry",
    ),
    path("outbox/replay/", api.ReplayView.as_view(), name="outbox-replay"),
]
