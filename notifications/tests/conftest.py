import pytest


@pytest.fixture
def customer(django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password="pw-alice-123"
    )


@pytest.fixture
def other_customer(django_user_model):
    return django_user_model.objects.create_user(
        username="bob", email="bob@example.com", password="pw-bob-123"
    )
