"""Staff endpoints to inspect and operate the outbox."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbox import deadletters, replay
from outbox.models import DeadLetter, OutboxEvent
from outbox.status import status as outbox_status


class Conflict(APIException):
    """The request does not fit the current state (409, code "conflict")."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class StatusView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Backlog, per-group lag and pending, dead letters (as outbox_status --json)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        return Response(outbox_status())


class OutboxEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutboxEvent
        fields = [
            "id",
            "event_id",
            "event_type",
            "version",
            "aggregate_type",
            "aggregate_id",
            "aggregate_version",
            "slot",
            "payload",
            "headers",
            "occurred_at",
            "published_at",
            "attempts",
            "last_error",
        ]


class DeadLetterSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "status",
            "group",
            "event_id",
            "event_type",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "reason",
            "error",
            "traceback",
            "attempts",
            "created_at",
            "resolved_at",
        ]


def _filters(request: Request, serializer: type[serializers.Serializer]) -> dict[str, Any]:
    """The validated query filters; an empty parameter is no filter. Bad ones are a 400."""
    data = {name: value for name, value in request.query_params.items() if value != ""}
    filters = serializer(data=data)
    filters.is_valid(raise_exception=True)
    return filters.validated_data


class EventFilterSerializer(serializers.Serializer):
    type = serializers.CharField(
        required=False, max_length=200, help_text="event type, e.g. orders.OrderCreated"
    )
    aggregate = serializers.RegexField(
        r"^[^:]{1,100}(:.{1,100})?$",
        required=False,
        help_text="TYPE or TYPE:ID, e.g. order:42",
        error_messages={"invalid": "TYPE or TYPE:ID, each at most 100 characters"},
    )
    published = serializers.BooleanField(required=False, allow_null=True, default=None)
    since = serializers.DateTimeField(required=False, help_text="occurred at or after")
    until = serializers.DateTimeField(required=False, help_text="occurred at or before")


@extend_schema(summary="The event log, newest first", parameters=[EventFilterSerializer])
class EventListView(ListAPIView):
    """The event log, newest first. Filters: type, aggregate (TYPE or TYPE:ID), published, since, until."""

    permission_classes = [IsAdminUser]
    serializer_class = OutboxEventSerializer

    def get_queryset(self) -> QuerySet[OutboxEvent]:
        values = _filters(self.request, EventFilterSerializer)
        qs = OutboxEvent.objects.order_by("-id")
        if "type" in values:
            qs = qs.filter(event_type=values["type"])
        if "aggregate" in values:
            agg_type, _, agg_id = values["aggregate"].partition(":")
            qs = qs.filter(aggregate_type=agg_type)
            if agg_id:
                qs = qs.filter(aggregate_id=agg_id)
        if values["published"] is not None:
            qs = qs.filter(published_at__isnull=not values["published"])
        if "since" in values:
            qs = qs.filter(occurred_at__gte=values["since"])
        if "until" in values:
            qs = qs.filter(occurred_at__lte=values["until"])
        return qs


class DeadLetterFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=DeadLetter.Status.choices, required=False)
    group = serializers.CharField(required=False, max_length=100, help_text="consumer group")


@extend_schema(summary="Dead letters, newest first", parameters=[DeadLetterFilterSerializer])
class DeadLetterListView(ListAPIView):
    """Dead letters, newest first. Filters: status (dead, resolved), group."""

    permission_classes = [IsAdminUser]
    serializer_class = DeadLetterSerializer

    def get_queryset(self) -> QuerySet[DeadLetter]:
        values = _filters(self.request, DeadLetterFilterSerializer)
        qs = DeadLetter.objects.order_by("-id")
        if "status" in values:
            qs = qs.filter(status=values["status"])
        if "group" in values:
            qs = qs.filter(group=values["group"])
        return qs


RetryOutput = inline_serializer(
    "DeadLetterRetryOutput",
    {
        "resolved": serializers.ListField(child=serializers.IntegerField()),
        "failed": serializers.DictField(child=serializers.CharField()),
    },
)


class DeadLetterRetryView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Retry a dead letter (and its aggregate's later ones, in order)",
        request=None,
        responses={200: RetryOutput},
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            letter = DeadLetter.objects.get(pk=pk)
        except DeadLetter.DoesNotExist:
            raise NotFound(f"no dead letter #{pk}") from None
        if letter.status != DeadLetter.Status.DEAD:
            raise Conflict(f"dead letter #{pk} is already {letter.status}")
        try:
            outcome = deadletters.retry([pk])
        except deadletters.LeaseBusy as exc:
            raise Conflict(f"{exc}; try again in a moment") from None
        return Response({"resolved": outcome.resolved, "failed": outcome.failed})


class ReplayView(APIView):
    """Republish events matching the filters; ``dry_run`` only counts them."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)
        type = serializers.CharField(required=False, max_length=200)
        aggregate = serializers.CharField(required=False, max_length=200)
        group = serializers.CharField(required=False, max_length=100)
        dry_run = serializers.BooleanField(default=False)

    @extend_schema(
        summary="Republish events matching the filters (dry_run only counts them)",
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "ReplayOutput",
                {
                    "matched": serializers.IntegerField(),
                    "republished": serializers.IntegerField(),
                    "dry_run": serializers.BooleanField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        flt = replay.ReplayFilter(
            since=values.get("since"),
            until=values.get("until"),
            event_type=values.get("type"),
            aggregate=values.get("aggregate"),
            group=values.get("group"),
        )
        try:
            qs = replay.select(flt)
        except ValueError as exc:
            field = "group" if "group" in str(exc) else "non_field_errors"
            raise ValidationError({field: [str(exc)]}) from None
        matched = qs.count()
        republished = 0 if values["dry_run"] else replay.replay(qs)
        return Response(
            {"matched": matched, "republished": republished, "dry_run": values["dry_run"]},
            status=status.HTTP_200_OK,
        )
