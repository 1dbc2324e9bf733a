"""Who is reading: the one reader scope every app's selectors take."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.exceptions import NotAuthenticated


@dataclass(frozen=True)
class Viewer:
    """An authenticated reader: a customer sees their own records, staff see everyone's."""

    user_id: int
    is_staff: bool = False

    @classmethod
    def of(cls, user: AbstractBaseUser | AnonymousUser) -> Viewer:
        """The viewer for a request's user; an anonymous one is a 401, as the views' permission says."""
        if user.pk is None:
            raise NotAuthenticated()
        return cls(user_id=int(user.pk), is_staff=bool(getattr(user, "is_staff", False)))

    @property
    def customer_id(self) -> int | None:
        """The customer whose records this viewer may see; None for staff (everyone's)."""
        return None if self.is_staff else self.user_id
