"""The OpenAPI schema's view of every operation: its errors too, in the API's one error shape."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    """Every error of the API. A validation error also holds, under each field name that
    was wrong, a list of messages (``non_field_errors`` for the body as a whole)."""

    detail = serializers.CharField(help_text="what went wrong, for people")
    code = serializers.CharField(help_text="what went wrong, for programs")


_BODY_METHODS = ("POST", "PUT", "PATCH")


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, plus the error answers each operation can give."""

    def _get_response_bodies(
        self, direction: Literal["request", "response"] = "response"
    ) -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, description in self._errors():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), str(code)
                )
        if "429" in responses:
            responses["429"]["headers"] = {
                "Retry-After": {
                    "schema": {"type": "integer", "minimum": 1},
                    "description": "seconds until the limit's window ends",
                }
            }
        return responses

    def _errors(self) -> list[tuple[int, str]]:
        errors = [
            (400, "Invalid input (a field-level message under each bad field)"),
            (401, "Missing, invalid, expired or revoked credentials"),
        ]
        permissions = self.view.get_permissions()
        if not all(isinstance(permission, AllowAny) for permission in permissions):
            errors.append((403, "Not allowed for this user"))
        if "{" in self.path:
            errors.append((404, "No such object, or not yours"))
        if self.method in _BODY_METHODS:
            errors.append((413, "Request body too large"))
            errors.append((415, "Send application/json"))
        throttles = getattr(self.view, "throttle_classes", ())
        if any(self.method in getattr(throttle, "methods", ()) for throttle in throttles):
            errors.append((429, "Rate limited: retry after the Retry-After header's seconds"))
        return errors
