"""The API clients every app's tests use: one place, one way to act as a user."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient

from shop.services import auth_token_issue


def client_for(
    user: AbstractBaseUser | None = None, *, token: bool = False, raise_errors: bool = True
) -> APIClient:
    """An API client acting as ``user`` (anonymous when None).

    With ``token`` the client presents a real API token, issued as logging in
    does, so authentication runs as in production; otherwise it is forced.
    ``raise_errors=False`` answers a server error as the 500 a client would get.
    """
    client = APIClient(raise_request_exception=raise_errors)
    if user is None:
        return client
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {auth_token_issue(user=user).token}")
    else:
        client.force_authenticate(user)
    return client
