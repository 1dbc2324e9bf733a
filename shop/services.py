"""Customer accounts, on Django's user model: sign-up and API tokens."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

import outbox
from shop.errors import DomainError
from shop.events import UserCreated


def customer_sign_up(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """Create a customer account and publish ``shop.UserCreated`` in the same transaction.

    Raises ``DomainError`` (with ``field``) for an invalid or taken username
    (compared case-insensitively), an invalid email address, or a password that
    Django's password validators reject; nothing is written then.
    """
    user_model = get_user_model()
    username = user_model.normalize_username(username.strip())
    email = user_model.objects.normalize_email(email.strip())
    user = user_model(username=username, email=email)
    others = [f.name for f in user_model._meta.fields if f.name != user_model.USERNAME_FIELD]
    _check(lambda: user.clean_fields(exclude=others), field="username")
    _check(lambda: validate_email(email), field="email")
    _check(lambda: validate_password(password, user=user), field="password")
    user.set_password(password)
    taken = DomainError("A user with that username already exists.", field="username")
    with transaction.atomic():
        if user_model.objects.filter(username__iexact=username).exists():
            raise taken
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # A concurrent sign-up took the name between the check and the insert.
            raise taken from None
        outbox.publish(UserCreated(user_id=user.pk))
    return user


def auth_token_obtain(*, username: str, password: str) -> str:
    """The API token of an active user with these credentials, created on first use.

    Raises ``DomainError`` when the credentials do not match an active user.
    """
    user = authenticate(username=username, password=password)
    if user is None:
        raise DomainError("Unable to log in with the given username and password.")
    with transaction.atomic():
        token, _ = Token.objects.get_or_create(user=user)
    return token.key


def _check(validate: Callable[[], object], *, field: str) -> None:
    try:
        validate()
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field=field) from None
