from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from outbox import deadletters, replay
from outbox.models import DeadLetter, DeliveryFailure, InboxEntry, OutboxEvent
from shop.admin import ReadOnlyAdmin


class PublishedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "published"

    def lookups(self, request, model_admin):
        return [("yes", "Published"), ("no", "Unpublished"), ("failing", "Failing to publish")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(published_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(published_at__isnull=True)
        if self.value() == "failing":
            return queryset.filter(published_at__isnull=True).exclude(last_error="")
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "event_type",
        "version",
        "aggregate_type",
        "aggregate_id",
        "aggregate_version",
        "slot",
        "occurred_at",
        "published_at",
        "attempts",
    ]
    list_filter = [PublishedFilter, "event_type", "aggregate_type"]
    search_fields = ["=aggregate_id", "=event_id", "event_type"]
    date_hierarchy = "occurred_at"
    ordering = ["-id"]
    actions = ["replay_selected"]

    @admin.action(description="Replay selected events (groups that applied them skip them)")
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = replay.replay(queryset.order_by("id"))
        self.message_user(request, f"{count} event(s) marked for republishing.", messages.SUCCESS)


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "group",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "attempts",
        "reason",
        "created_at",
    ]
    list_filter = ["status", "group", "event_type"]
    search_fields = ["=aggregate_id", "=event_id", "reason", "error"]
    ordering = ["-id"]
    actions = ["retry_selected"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The change page shows the error and traceback; nothing on it is editable.
        return request.user.is_staff

    @admin.action(description="Retry selected dead letters (in each aggregate's order)")
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        try:
            outcome = deadletters.retry(
                list(queryset.order_by("sequence", "id").values_list("pk", flat=True))
            )
        except deadletters.LeaseBusy as exc:
            self.message_user(request, f"{exc}; try again in a moment.", messages.WARNING)
            return
        if outcome.resolved:
            self.message_user(
                request, f"{len(outcome.resolved)} dead letter(s) resolved.", messages.SUCCESS
            )
        for pk, error in outcome.failed.items():
            self.message_user(request, f"#{pk} failed again: {error}", messages.ERROR)


@admin.register(InboxEntry)
class InboxEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "group", "event_type", "event_id", "processed_at"]
    list_filter = ["group", "event_type"]
    search_fields = ["=event_id"]
    ordering = ["-id"]


@admin.register(DeliveryFailure)
class DeliveryFailureAdmin(ReadOnlyAdmin):
    list_display = ["group", "stream", "entry_id", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["group"]
