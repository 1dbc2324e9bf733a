"""The accounts API: sign up, get a token, see who you are."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shop import services


class CustomerSignUpApi(APIView):
    permission_classes = [AllowAny]

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
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.customer_sign_up(**data.validated_data)
        return Response(self.OutputSerializer(user).data, status=status.HTTP_201_CREATED)


class AuthTokenApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="Credentials")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(trim_whitespace=False, write_only=True)

    @extend_schema_serializer(component_name="AuthToken")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(
        operation_id="auth_token_obtain",
        request=InputSerializer,
        responses=OutputSerializer,
        auth=[],
        description="Send the token as `Authorization: Token <token>`.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.auth_token_obtain(**data.validated_data)
        return Response(self.OutputSerializer({"token": token}).data)


class CustomerMeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="pk")
        username = serializers.CharField()
        email = serializers.EmailField()
        is_staff = serializers.BooleanField()

    @extend_schema(operation_id="customers_me", responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(request.user).data)
