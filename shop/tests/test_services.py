import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from outbox.models import OutboxEvent
from shop import services
from shop.errors import DomainError

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "correct-horse-battery"


class Boom(Exception):
    pass


def user_events(user_id: int) -> list[tuple[str, dict]]:
    rows = OutboxEvent.objects.filter(aggregate_type="user", aggregate_id=str(user_id))
    return [(row.event_type, row.payload) for row in rows.order_by("id")]


def user_created_count() -> int:
    return OutboxEvent.objects.filter(event_type="shop.UserCreated").count()


def test_sign_up_creates_the_user_and_publishes_user_created():
    # when
    user = services.customer_sign_up(
        username="alice", email="Alice@EXAMPLE.com", password=GOOD_PASSWORD
    )

    # then
    user = get_user_model().objects.get(pk=user.pk)
    assert user.username == "alice"
    assert user.email == "Alice@example.com"
    assert user.check_password(GOOD_PASSWORD)
    assert user.is_staff is False
    assert user.is_superuser is False
    assert user_events(user.pk) == [("shop.UserCreated", {"user_id": user.pk})]


@pytest.mark.parametrize(
    ("username", "email", "password", "field"),
    [
        ("bob", "bob@example.com", "short", "password"),
        ("bob", "bob@example.com", "password123", "password"),
        ("bob", "bob@example.com", "83749261038", "password"),
        ("bob", "bob@example.com", "bob@example.com", "password"),
        ("bob", "not-an-email", GOOD_PASSWORD, "email"),
        ("bob", "", GOOD_PASSWORD, "email"),
        ("", "bob@example.com", GOOD_PASSWORD, "username"),
        ("bob smith", "bob@example.com", GOOD_PASSWORD, "username"),
        ("b" * 151, "bob@example.com", GOOD_PASSWORD, "username"),
    ],
)
def test_invalid_sign_ups_are_refused_and_write_nothing(username, email, password, field):
    before = user_created_count()

    with pytest.raises(DomainError) as caught:
        services.customer_sign_up(username=username, email=email, password=password)

    assert caught.value.field == field
    assert not get_user_model().objects.filter(email=email).exists()
    assert user_created_count() == before


def test_a_taken_username_is_refused_whatever_its_case():
    existing = services.customer_sign_up(
        username="alice", email="alice@example.com", password=GOOD_PASSWORD
    )
    before = user_created_count()

    with pytest.raises(DomainError) as caught:
        services.customer_sign_up(
            username="ALICE", email="other@example.com", password=GOOD_PASSWORD
        )

    assert caught.value.field == "username"
    assert caught.value.message == "A user with that username already exists."
    assert list(get_user_model().objects.filter(username__iexact="alice")) == [existing]
    assert user_created_count() == before


def test_the_user_and_its_event_roll_back_together():
    before = user_created_count()

    with pytest.raises(Boom), transaction.atomic():
        services.customer_sign_up(
            username="carol", email="carol@example.com", password=GOOD_PASSWORD
        )
        raise Boom

    assert not get_user_model().objects.filter(username="carol").exists()
    assert user_created_count() == before


def test_a_failure_to_publish_creates_no_user(monkeypatch):
    def refuse(event):
        raise Boom("the outbox refused the event")

    monkeypatch.setattr(services.outbox, "publish", refuse)

    with pytest.raises(Boom):
        services.customer_sign_up(username="dave", email="dave@example.com", password=GOOD_PASSWORD)

    assert not get_user_model().objects.filter(username="dave").exists()


def test_each_login_issues_a_new_token_stored_only_as_a_hash():
    # given
    user = services.customer_sign_up(
        username="alice", email="alice@example.com", password=GOOD_PASSWORD
    )

    # when
    first = services.auth_token_obtain(username="alice", password=GOOD_PASSWORD)
    second = services.auth_token_obtain(username="alice", password=GOOD_PASSWORD)

    # then
    assert first.token != second.token
    digests = set(user.auth_token_set.values_list("digest", flat=True))
    assert len(digests) == 2
    assert first.token not in digests and second.token not in digests


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong"), ("nobody", GOOD_PASSWORD)])
def test_bad_credentials_get_no_token(username, password):
    services.customer_sign_up(username="alice", email="alice@example.com", password=GOOD_PASSWORD)

    with pytest.raises(DomainError):
        services.auth_token_obtain(username=username, password=password)

    assert not get_user_model().objects.get(username="alice").auth_token_set.exists()


def test_an_inactive_user_gets_no_token():
    user = services.customer_sign_up(
        username="alice", email="alice@example.com", password=GOOD_PASSWORD
    )
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    with pytest.raises(DomainError):
        services.auth_token_obtain(username="alice", password=GOOD_PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_two_sign_ups_differing_only_in_case_at_once_make_one_user():
    import threading

    from django.db import connection

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def sign_up(name: str) -> None:
        barrier.wait(timeout=10)
        try:
            services.customer_sign_up(
                username=name, email=f"{name}@example.com", password="a-long-pass-phrase-42"
            )
            outcomes.append("created")
        except DomainError as exc:
            outcomes.append(f"{exc.field}: {exc.message}")
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in ("Eve", "eve")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["created", "username: A user with that username already exists."]
    assert get_user_model().objects.filter(username__iexact="eve").count() == 1
