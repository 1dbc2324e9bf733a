"""The notifications API: each customer reads their own messages."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors
from notifications.models import Notification
from shop.drf import paginated_response, paginated_schema
from shop.viewers import Viewer


class NotificationListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="NotificationSummary")
    class OutputSerializer(serializers.ModelSerializer):
        order = serializers.IntegerField(source="order_id", allow_null=True)

        class Meta:
            model = Notification
            fields = ["id", "kind", "subject", "order", "created_at"]

    @extend_schema(
        operation_id="notifications_list",
        responses=paginated_schema("PaginatedNotifications", OutputSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        notifications = selectors.notification_list(viewer=Viewer.of(request.user))
        return paginated_response(request, self, notifications, self.OutputSerializer)


class NotificationDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="Notification")
    class OutputSerializer(serializers.ModelSerializer):
        order = serializers.IntegerField(source="order_id", allow_null=True)

        class Meta:
            model = Notification
            fields = ["id", "kind", "subject", "body", "order", "email_sent", "created_at"]

    @extend_schema(operation_id="notifications_retrieve", responses=OutputSerializer)
    def get(self, request: Request, notification_id: int) -> Response:
        notification = selectors.notification_get(
            viewer=Viewer.of(request.user), notification_id=notification_id
        )
        return Response(self.OutputSerializer(notification).data)
