"""Customer accounts, on Django's user model: sign-up, API tokens and passwords."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken

import outbox
from shop.errors import DomainError
from shop.events import UserCreated


def customer_sign_up(*, username: str, email: str, password: str) -> User:
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
            # A savepoint, not insert_unless_exists: saving a user runs Django's
            # password hooks, which a bare INSERT would leave pending.
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # A concurrent sign-up took the name between the check and the insert.
            raise taken from None
        outbox.publish(UserCreated(user_id=user.pk))
    return user


class InvalidCredentials(DomainError):
    """The username and password do not match an active user."""


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once: only its hash is stored
    expiry: datetime | None


def auth_token_obtain(*, username: str, password: str) -> IssuedToken:
    """A new API token for the active user with these credentials (a login).

    Raises ``InvalidCredentials`` when they do not match an active user.
    """
    user = authenticate(username=username, password=password)
    if user is None:
        raise InvalidCredentials("Unable to log in with the given username and password.")
    return auth_token_issue(user=user)


def auth_token_issue(*, user: User) -> IssuedToken:
    """A new API token for ``user``, ending at ``REST_KNOX["TOKEN_TTL"]`` from now.

    Only a hash of it is stored. The user's expired tokens are deleted, and the
    oldest live ones beyond ``AUTH_TOKENS_PER_USER`` are revoked.
    """
    with transaction.atomic():
        tokens = AuthToken.objects.filter(user=user)
        tokens.filter(expiry__lt=timezone.now()).delete()
        keep = max(settings.AUTH_TOKENS_PER_USER - 1, 0)
        oldest = tokens.order_by("-created").values_list("digest", flat=True)[keep:]
        AuthToken.objects.filter(digest__in=list(oldest)).delete()
        instance, token = AuthToken.objects.create(user=user)
    return IssuedToken(token=token, expiry=instance.expiry)


def auth_token_revoke(*, token: AuthToken) -> None:
    """End one token (a logout)."""
    with transaction.atomic():
        AuthToken.objects.filter(digest=token.digest).delete()


def auth_tokens_revoke(*, user: User) -> int:
    """End every token of ``user`` (log out everywhere); returns how many there were."""
    with transaction.atomic():
        deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted


def password_change(*, user: User, old_password: str, new_password: str) -> IssuedToken:
    """Set a new password and end every token of the user; returns a new token.

    Raises ``DomainError`` (with ``field``) when ``old_password`` is wrong or the
    validators reject ``new_password``; nothing changes then.
    """
    if not user.check_password(old_password):
        raise DomainError("The current password is wrong.", field="old_password")
    _check(lambda: validate_password(new_password, user=user), field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        # Saving runs the password_changed hooks: shop.auth revokes every token there.
        user.save(update_fields=["password"])
        return auth_token_issue(user=user)


def password_reset(*, user: User, password: str) -> None:
    """Set ``user``'s password without the old one (an operator's reset); every token ends.

    Raises ``DomainError`` (field "password") when the validators reject it; nothing
    changes then.
    """
    _check(lambda: validate_password(password, user=user), field="password")
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])


def _check(validate: Callable[[], object], *, field: str) -> None:
    try:
        validate()
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field=field) from None
