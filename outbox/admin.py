"""The outbox in the admin: the event log, dead letters, the operator's page, event lifecycles.

Knows nothing of the project it serves: its own read-only bases, its own templates.
History is viewable, never edited; whatever staff may do to it is an action that
calls ``outbox.deadletters`` or ``outbox.replay``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from outbox import charts, deadletters, health, inspect, replay
from outbox.models import DeadLetter, DeliveryFailure, InboxEntry, OutboxEvent
from outbox.status import status


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: viewable (a page without a Save button), never added, changed or deleted by hand.

    Whatever staff may do to such rows is an admin action that calls a service.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def lifecycle_link(event_id: uuid.UUID | str | None, text: str = "lifecycle") -> str:
    if not event_id:
        return "-"
    url = reverse("admin:outbox_event_lifecycle", args=[event_id])
    return format_html('<a class="lifecycle-link" href="{}">{}</a>', url, text)


class _LifecycleColumn:
    """A ``lifecycle`` column linking a row about an event (``event_id``) to its lifecycle page."""

    @admin.display(description="lifecycle")
    def lifecycle(self, row: OutboxEvent | DeadLetter | InboxEntry) -> str:
        return lifecycle_link(row.event_id)


def _pre(text: str) -> SafeString:
    if not text:
        return mark_safe("-")
    return format_html(
        '<pre class="traceback" style="font-family: monospace; white-space: pre-wrap; '
        'font-size: 12px; margin: 0">{}</pre>',
        text,
    )


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
class OutboxEventAdmin(_LifecycleColumn, ReadOnlyAdmin):
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
        "lifecycle",
    ]
    list_filter = [PublishedFilter, "event_type", "aggregate_type"]
    search_fields = ["=aggregate_id", "=event_id", "event_type"]
    date_hierarchy = "occurred_at"
    ordering = ["-id"]
    actions = ["replay_selected"]
    readonly_fields = ["lifecycle"]
    change_list_template = "admin/outbox/outboxevent/change_list.html"

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:  # type: ignore[override]
        # "Events of this correlation" links from a lifecycle page.
        if lookup == "headers__correlation_id":
            return True
        return super().lookup_allowed(lookup, value, request)

    @admin.action(description="Replay selected events (groups that applied them skip them)")
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = replay.replay(queryset.order_by("id"))
        self.message_user(request, f"{count} event(s) marked for republishing.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "operator/",
                self.admin_site.admin_view(self.operator_view),
                name="outbox_operator",
            ),
            path(
                "lifecycle/<uuid:event_id>/",
                self.admin_site.admin_view(self.lifecycle_view),
                name="outbox_event_lifecycle",
            ),
        ]
        return own + super().get_urls()

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta}

    def operator_view(self, request: HttpRequest) -> HttpResponse:
        """Events per minute, each group's lag over the last hour, dead letters by reason."""
        context = self._context(request, "Operator's page")
        now = timezone.now()
        recent = inspect.activity(now=now)
        by_reason = inspect.dead_letters_by_reason()
        current = status()
        try:
            readers = health.reader_checks()
        except Exception as exc:  # noqa: BLE001 - Redis may be down: the page still opens
            readers = {"readers": f"unknown: {exc}"}
        context.update(
            now=now,
            status=current,
            readers=readers,
            activity=recent,
            by_reason=by_reason,
            events_chart=mark_safe(  # noqa: S308 - charts escape every text they draw
                charts.stacked_bars(
                    recent.events,
                    start=recent.start,
                    title="Events committed per minute, by type (last hour)",
                    unit="events",
                    empty="no events in the last hour",
                )
            ),
            lag_chart=mark_safe(  # noqa: S308
                charts.lines(
                    recent.lag,
                    start=recent.start,
                    title="Lag of each consumer group: events not yet applied (last hour)",
                    unit="events",
                    empty="no consumer groups",
                )
            ),
            dead_chart=mark_safe(  # noqa: S308
                charts.horizontal_bars(
                    by_reason,
                    title="Open dead letters by reason, per group",
                    empty="no open dead letters",
                )
            ),
            lag_now={group: points[-1] for group, points in recent.lag.items()},
        )
        return TemplateResponse(request, "admin/outbox/operator.html", context)

    def lifecycle_view(self, request: HttpRequest, event_id: uuid.UUID) -> HttpResponse:
        """One event: its row, the stream entry it became, and what each group did with it."""
        event = get_object_or_404(OutboxEvent, event_id=event_id)
        context = self._context(request, f"Lifecycle of event #{event.pk} ({event.event_type})")
        life = inspect.lifecycle(event)
        context.update(
            event=event,
            life=life,
            picture=mark_safe(charts.lifecycle_svg(life)),  # noqa: S308 - escapes its texts
            correlation_id=(event.headers or {}).get("correlation_id", ""),
        )
        return TemplateResponse(request, "admin/outbox/lifecycle.html", context)


@admin.register(DeadLetter)
class DeadLetterAdmin(_LifecycleColumn, ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "group",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "attempts",
        "kind",
        "reason",
        "created_at",
        "lifecycle",
    ]
    list_filter = ["status", "kind", "group", "event_type"]
    search_fields = ["=aggregate_id", "=event_id", "reason", "error"]
    ordering = ["-id"]
    actions = ["retry_selected", "discard_selected"]
    readonly_fields = [
        "id",
        "status",
        "group",
        "partition",
        "event_id",
        "lifecycle",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "kind",
        "reason",
        "attempts",
        "error",
        "traceback_text",
        "fields",
        "created_at",
        "resolved_at",
        "discarded_at",
        "discarded_by",
        "discard_reason",
        "what_now",
    ]
    fields = tuple(readonly_fields)

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("outbox.change_deadletter")

    @admin.display(description="traceback")
    def traceback_text(self, letter: DeadLetter) -> SafeString:
        return _pre(letter.traceback)

    @admin.display(description="what now")
    def what_now(self, letter: DeadLetter) -> str:
        if letter.status != DeadLetter.Status.DEAD:
            return "Nothing: it is no longer open."
        return format_html(
            'Retry it, or <a class="discard-link" href="{}">discard it</a> (recorded with '
            "your name and reason). Retrying applies the aggregate's open dead letters in order.",
            reverse("admin:outbox_deadletter_discard", args=[letter.pk]),
        )

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:letter_id>/discard/",
                self.admin_site.admin_view(self.discard_view),
                name="outbox_deadletter_discard",
            )
        ]
        return own + super().get_urls()

    def discard_view(self, request: HttpRequest, letter_id: int) -> HttpResponse:
        if not self.has_discard_permission(request):
            raise PermissionDenied
        return self._discard(request, DeadLetter.objects.filter(pk=letter_id)) or (
            HttpResponseRedirect(reverse("admin:outbox_deadletter_change", args=[letter_id]))
        )

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

    @admin.action(
        description="Discard selected dead letters (never applied; recorded with a reason)",
        permissions=["discard"],
    )
    def discard_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        return self._discard(request, queryset)

    def _discard(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> HttpResponse | None:
        """Ask why (a confirmation page), then discard; None once done (back to the list)."""
        letters = list(queryset.filter(status=DeadLetter.Status.DEAD).order_by("id"))
        reason = str(request.POST.get("discard_reason", "")).strip()
        if request.method == "POST" and request.POST.get("confirmed") == "yes":
            if not reason:
                self.message_user(request, "Say why they are discarded.", messages.ERROR)
            elif letters:
                try:
                    outcome = deadletters.discard(
                        [letter.pk for letter in letters],
                        by=request.user.get_username(),
                        reason=reason,
                    )
                except deadletters.LeaseBusy as exc:
                    self.message_user(request, f"{exc}; try again in a moment.", messages.WARNING)
                    return None
                self.message_user(
                    request,
                    f"{len(outcome.discarded)} dead letter(s) discarded: "
                    + ", ".join(f"#{pk}" for pk in outcome.discarded),
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Discard dead letters",
            "opts": self.model._meta,
            "letters": letters,
            "reason": reason,
            "action_url": request.get_full_path(),
            "from_list": request.POST.get("action") == "discard_selected",
        }
        return TemplateResponse(request, "admin/outbox/deadletter/discard.html", context)


@admin.register(InboxEntry)
class InboxEntryAdmin(_LifecycleColumn, ReadOnlyAdmin):
    list_display = ["id", "group", "event_type", "event_id", "processed_at", "lifecycle"]
    list_filter = ["group", "event_type"]
    search_fields = ["=event_id"]
    ordering = ["-id"]


@admin.register(DeliveryFailure)
class DeliveryFailureAdmin(ReadOnlyAdmin):
    list_display = ["group", "stream", "entry_id", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["group"]
    readonly_fields = [
        "group",
        "stream",
        "entry_id",
        "attempts",
        "next_attempt_at",
        "error",
        "updated_at",
    ]
    fields = tuple(readonly_fields)

    @admin.display(description="last error")
    def error(self, failure: DeliveryFailure) -> SafeString:
        return _pre(failure.last_error)
