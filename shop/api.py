"""The accounts API (sign up, log in and out, change the password, see who you are) and its root."""

from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.models import User
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shop import ratelimit, services

# A response carrying a token is kept by no cache (RFC 6749, 5.1).
NO_STORE = {"Cache-Control": "no-store"}


def signed_in(request: Request) -> User:
    """The request's user, who must be signed in (behind ``IsAuthenticated``)."""
    if not isinstance(request.user, User):
        raise NotAuthenticated()
    return request.user


@extend_schema_serializer(component_name="AuthToken")
class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField(allow_null=True)


class CustomerSignUpApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ratelimit.SignUpAddressLimit]

    @extend_schema_serializer(component_name="SignUp")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)

    @extend_schema_serializer(component_name="Customer")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="pk")
        username = serializers.CharField()
        email = serializers.EmailField()

    @extend_schema(
        operation_id="customers_sign_up",
        request=InputSerializer,
        responses={201: OutputSerializer},
        auth=[],
        description="Rate limited per client address (every attempt) and per email address "
        "(accounts created).",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].strip().lower()
        with ratelimit.counting_successes("signup_email", email):
            user = services.customer_sign_up(**data.validated_data)
        return Response(self.OutputSerializer(user).data, status=status.HTTP_201_CREATED)


class AuthTokenApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ratelimit.LoginAddressLimit]

    @extend_schema_serializer(component_name="Credentials")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)

    @extend_schema(
        operation_id="auth_token_obtain",
        request=InputSerializer,
        responses=TokenOutputSerializer,
        auth=[],
        description="Log in: a new token, sent as `Authorization: Token <token>` until its "
        "expiry, a logout or a password change. Rate limited per client address (every "
        "attempt) and per username (failed attempts).",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"].strip().lower()
        with ratelimit.counting_failures("login_user", username):
            issued = services.auth_token_obtain(**data.validated_data)
        return Response(TokenOutputSerializer(issued).data, headers=NO_STORE)


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout",
        request=None,
        responses={204: OpenApiResponse(description="The token (or session) has ended.")},
        description="End the token this request was sent with (or the browser session).",
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, AuthToken):
            services.auth_token_revoke(token=request.auth)
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutEverywhereApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout_all",
        request=None,
        responses={204: OpenApiResponse(description="Every token of the user has ended.")},
        description="End every token of the user, on every device.",
    )
    def post(self, request: Request) -> Response:
        services.auth_tokens_revoke(user=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="PasswordChange")
    class InputSerializer(serializers.Serializer):
        old_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
        new_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)

    @extend_schema(
        operation_id="auth_password_change",
        request=InputSerializer,
        responses=TokenOutputSerializer,
        description="Set a new password. Every token of the user ends (on every device); the "
        "answer carries a new one for this client.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = signed_in(request)
        issued = services.password_change(user=user, **data.validated_data)
        if request.auth is None:
            # Signed in with a session: keep this one, end the others.
            update_session_auth_hash(request._request, user)
        return Response(TokenOutputSerializer(issued).data, headers=NO_STORE)


class CustomerMeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="pk")
        username = serializers.CharField()
        # Not an EmailField: staff made with createsuperuser may have none ("").
        email = serializers.CharField(help_text="an email address, or empty when there is none")
        is_staff = serializers.BooleanField()

    @extend_schema(operation_id="customers_me", responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(request.user).data)


class ApiRootApi(APIView):
    """Where everything in the API starts: links to each resource and to the docs."""

    permission_classes = [AllowAny]
    name = "API root"

    @extend_schema(
        operation_id="api_root",
        summary="The API's entry points",
        responses=inline_serializer(
            name="ApiRoot",
            fields={
                "docs": serializers.URLField(),
                "schema": serializers.URLField(),
                "links": serializers.DictField(child=serializers.URLField()),
            },
        ),
        auth=[],
    )
    def get(self, request: Request) -> Response:
        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        return Response(
            {
                "docs": url("docs"),
                "schema": url("schema"),
                "links": {
                    "sign_up": url("customer-sign-up"),
                    "log_in": url("auth-token"),
                    "me": url("customer-me"),
                    "products": url("inventory:product-list"),
                    "orders": url("orders:list"),
                    "payments": url("payments:payment-list"),
                    "shipments": url("shipment-list"),
                    "notifications": url("notification-list"),
                    "outbox_status": url("outbox-status"),
                    "outbox_dead_letters": url("outbox-dead-letters"),
                },
            }
        )
