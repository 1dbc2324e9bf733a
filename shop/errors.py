"""Domain errors, shared by every app and mapped to HTTP in one place (shop.drf)."""


class DomainError(Exception):
    """A request the domain refuses. Subclasses say which HTTP status fits."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request does not fit the current state (e.g. cancelling a shipped order)."""

    status_code = 409
    code = "conflict"
