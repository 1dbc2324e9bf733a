"""The events the project package publishes: accounts (aggregate "user", id user_id)."""

from outbox import Event


class UserCreated(Event):
    """A customer signed up. No personal data: consumers look the user up by id."""

    name = "shop.UserCreated"
    version = 1
    aggregate_type = "user"
    aggregate_id_field = "user_id"

    user_id: int
