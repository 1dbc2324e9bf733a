from django.core.mail.backends.base import BaseEmailBackend


class FailingBackend(BaseEmailBackend):
    """An email backend whose mail server is down."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server unreachable")
