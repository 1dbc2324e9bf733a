import pytest
from django.test import Client


@pytest.mark.django_db
def test_health_reports_database_and_redis():
    response = Client().get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/orders/", "/api/products/", "/api/outbox/status/"} <= set(paths)
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


@pytest.mark.django_db
def test_every_admin_changelist_opens_for_staff(admin_client):
    from django.contrib import admin
    from django.urls import reverse

    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = admin_client.get(url)
        assert response.status_code == 200, url


@pytest.mark.django_db
def test_the_landing_page_links_docs_admin_health_and_metrics():
    response = Client().get("/")

    html = response.content.decode()
    assert response.status_code == 200
    for href in (
        "/api/docs/",
        "/api/",
        "/api-auth/login/?next=/api/docs/",
        "/admin/",
        "/admin/outbox/outboxevent/operator/",
        "/health/live",
        "/health/ready",
        "/metrics",
    ):
        assert f'href="{href}"' in html, href


@pytest.mark.django_db
def test_the_api_root_lists_the_resources():
    response = Client().get("/api/")

    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["links"]["orders"] == "http://testserver/api/orders/"
    assert body["links"]["log_in"] == "http://testserver/api/auth/token/"


@pytest.mark.django_db
def test_view_names_read_as_resources(admin_client):
    names = {
        path: admin_client.options(path).json()["name"]
        for path in (
            "/api/orders/",
            "/api/orders/1/",
            "/api/orders/1/cancel/",
            "/api/notifications/",
        )
    }

    assert names == {
        "/api/orders/": "Orders",
        "/api/orders/1/": "Order",
        "/api/orders/1/cancel/": "Order cancel",
        "/api/notifications/": "Notifications",
    }


@pytest.mark.django_db
def test_a_customer_logs_in_with_drfs_page_and_the_session_reaches_the_api():
    from shop import services

    services.customer_sign_up(username="browser", email="b@example.com", password="a-long-pass-42")
    client = Client()

    form = client.get("/api-auth/login/?next=/api/docs/")
    done = client.post(
        "/api-auth/login/?next=/api/docs/",
        {"username": "browser", "password": "a-long-pass-42", "next": "/api/docs/"},
    )
    me = client.get("/api/customers/me/")

    assert form.status_code == 200 and b'name="username"' in form.content
    assert (done.status_code, done["Location"]) == (302, "/api/docs/")
    assert me.status_code == 200 and me.json()["username"] == "browser"


@pytest.mark.django_db
def test_the_browser_login_counts_against_the_apis_login_limits(rate_limits, settings):
    from shop import services

    settings.RATELIMITS = {**settings.RATELIMITS, "login_user": "2/15m", "login_address": "30/m"}
    services.customer_sign_up(username="guessed", email="g@example.com", password="a-long-pass-42")
    client = Client()

    wrong = [
        client.post("/api-auth/login/", {"username": "guessed", "password": "nope"}).status_code
        for _ in range(2)
    ]
    refused = client.post("/api-auth/login/", {"username": "guessed", "password": "a-long-pass-42"})

    assert wrong == [200, 200]  # the form again, with its error
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert b"Too many login attempts" in refused.content
    assert "_auth_user_id" not in client.session
