"""The admin's pictures in a real browser: headless Chromium (the system's), driven by Selenium.

Skipped, saying why, when Chromium, ChromeDriver or Selenium is missing
(``apt-get install chromium chromium-driver``; ``.ci/run`` installs them).
"""

import shutil

import pytest

from orders.models import Order, TimelineEntry
from outbox.models import OutboxEvent
from shop.tests import sagas

pytestmark = pytest.mark.django_db(transaction=True)

# What works here for Chromium as root on a machine without a network (see the README).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
)


@pytest.fixture
def browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("no Chromium and ChromeDriver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(chromedriver))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _log_in(browser, base: str) -> None:
    from django.contrib.auth import get_user_model
    from selenium.webdriver.common.by import By

    get_user_model().objects.create_superuser("ops", "ops@example.com", "an-ops-pass-phrase-1")
    browser.get(f"{base}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("an-ops-pass-phrase-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _until(browser, lambda: "/admin/login/" not in browser.current_url, "the admin after login")


def _until(browser, condition, what: str) -> None:
    """Poll the page (at most 30 s) until ``condition()``: a click returns before its page loads."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30, poll_frequency=0.1).until(lambda _: condition(), message=what)


def _drawn(browser, selector: str) -> list:
    """The SVGs matching ``selector``, each laid out by the browser with a non-empty box."""
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, selector)
    for svg in found:
        box = browser.execute_script(
            "const b = arguments[0].getBBox(); return [b.width, b.height];", svg
        )
        assert box[0] > 100 and box[1] > 20, (selector, box)
        assert svg.size["width"] > 100
    return found


def _texts(svg) -> set[str]:
    from selenium.webdriver.common.by import By

    return {text.text for text in svg.find_elements(By.TAG_NAME, "text")}


def test_the_operator_page_a_lifecycle_and_an_order_render_their_pictures(
    browser, live_server, settings
):
    from selenium.webdriver.common.by import By

    # given an order whose saga ran to CONFIRMED, in-process
    settings.PAYMENTS_DISPATCH_ON_COMMIT = False
    sagas.seed_product("BRW-1", stock=5, wait=False)
    sagas.settle()
    order = sagas.place(7, [("BRW-1", 1)])
    sagas.settle()
    assert Order.objects.get(pk=order.pk).status == Order.Status.CONFIRMED
    created = OutboxEvent.objects.get(event_type="orders.OrderCreated", aggregate_id=str(order.pk))
    _log_in(browser, live_server.url)

    # when staff open the operator's page
    browser.get(f"{live_server.url}/admin/outbox/outboxevent/operator/")

    # then its three pictures are drawn, and name the event types and groups they show
    events, lag, dead = (
        _drawn(browser, f"svg.chart.{kind}")[0]
        for kind in ("stacked-bars", "lines", "horizontal-bars")
    )
    assert {"orders.OrderCreated", "orders.OrderConfirmed"} <= _texts(events)
    assert {"orders", "payments", "inventory", "shipping", "notifications"} <= _texts(lag)
    assert "no open dead letters" in _texts(dead)

    # when they open the lifecycle of the order's OrderCreated
    browser.get(f"{live_server.url}/admin/outbox/outboxevent/lifecycle/{created.event_id}/")

    # then its picture shows the commit, the relay and each subscribed group
    (picture,) = _drawn(browser, "svg.chart.lifecycle")
    assert {
        "committed",
        "relayed",
        "inventory",
        "payments",
        "notifications",
        "orders-timeline",
    } <= (_texts(picture))
    states = {
        row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
        for row in browser.find_elements(By.CSS_SELECTOR, "tr.group-row")
    }
    assert states == dict.fromkeys(
        ["inventory", "notifications", "orders-timeline", "payments"], "applied"
    )

    # when they open the order's page
    browser.get(f"{live_server.url}/admin/orders/order/{order.pk}/change/")

    # then the saga is drawn, and each timeline entry links to its event's lifecycle
    (saga,) = _drawn(browser, "div.readonly svg[role=img]")
    assert f"Order #{order.pk}: CONFIRMED" in " ".join(_texts(saga))
    entries = browser.find_elements(By.CSS_SELECTOR, "tr.timeline-entry a")
    assert len(entries) == TimelineEntry.objects.filter(order_id=order.pk).count() > 3
    entries[0].click()
    lifecycle = f"/admin/outbox/outboxevent/lifecycle/{created.event_id}/"
    _until(browser, lambda: lifecycle in browser.current_url, "the lifecycle page")
    _until(
        browser,
        lambda: browser.find_elements(By.CSS_SELECTOR, "svg.chart.lifecycle"),
        "the lifecycle picture",
    )
    _drawn(browser, "svg.chart.lifecycle")
