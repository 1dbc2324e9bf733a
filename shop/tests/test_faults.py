"""PostgreSQL and Redis restart under load, with the shop running as the run command runs it.

Each test starts servers of its own on ports of its own and restarts those, never the
shared ones; no shop process is restarted by hand.
"""

import time

import pytest

from shop.tests.faults import (
    Load,
    OwnPostgres,
    Shop,
    create_database,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

PG_PORT, REDIS_PORT, WEB_PORT = 16501, 16502, 16503


def test_a_postgresql_restart_under_load_heals_without_restarting_any_shop_process(
    tmp_path, own_redis
):
    # given the shop on a PostgreSQL of its own, taking orders
    postgres = OwnPostgres(PG_PORT)
    shop = None
    try:
        create_database(postgres.url("postgres"), "shop_fault")
        shop = Shop(
            database_url=postgres.url("shop_fault"),
            redis_url=own_redis.url,
            port=WEB_PORT,
            logdir=tmp_path,
        )
        load = Load(shop)
        wait_until(lambda: len(load.accepted) >= 20, 60, "orders to be accepted")
        # when PostgreSQL stops at once, stays away a while, and comes back
        postgres.stop_immediately()
        time.sleep(5)  # the outage itself: how long the database is away
        postgres.start()
        back = time.monotonic()
        wait_until(lambda: len(load.accepted) >= 60, 60, "orders to be accepted again")
        accepted = load.stop()
        # then every accepted order reaches its end state within 30 s of the database's return
        wait_until(
            lambda: shop.pending_orders(accepted) == 0,
            30 + back - time.monotonic(),
            "every accepted order to reach its end state",
        )
        # and every group applied every event once, with no process restarted
        wait_until(lambda: not shop.audit(), 30, "every group to catch up")
        assert shop.audit() == ""
        assert shop.restarts() == {"web": 0, "worker": 0, "beat": 0}
        log = shop.log.read_text()
        assert "the database is unreachable" in log
    finally:
        if shop is not None:
            shop.stop()
        postgres.remove()


def test_redis_restarted_empty_ten_times_under_load_converges_every_time(
    tmp_path, own_redis, own_database
):
    # given the shop on its own Redis and a database of its own, taking orders
    shop = None
    try:
        shop = Shop(
            database_url=own_database,
            redis_url=own_redis.url,
            port=WEB_PORT,
            logdir=tmp_path,
        )
        load = Load(shop, pace_s=0.1)
        converged: list[float] = []
        for restart in range(10):
            before = len(load.accepted)
            wait_until(
                lambda before=before: len(load.accepted) >= before + 5, 60, "orders to be accepted"
            )
            # when Redis restarts empty
            own_redis.restart_empty()
            # then the shop converges: orders accepted so far all reach their end state
            accepted = list(load.accepted)
            took = wait_until(
                lambda accepted=accepted: shop.pending_orders(accepted) == 0,
                90,
                f"the orders to finish after restart {restart + 1}",
            )
            converged.append(took)
        accepted = load.stop()
        wait_until(lambda: shop.pending_orders(accepted) == 0, 60, "every order to finish")
        wait_until(lambda: not shop.audit(), 60, "every group to catch up")
        assert shop.audit() == ""
        restarts = shop.restarts()
        # The worker may die in kombu while Redis is away (then the supervisor restarts it);
        # web and beat never need it.
        print(
            f"ten Redis restarts: the orders finished within {max(converged):.1f} s of each; "
            f"supervisor restarts: {restarts}"
        )
        assert restarts["web"] == 0
    finally:
        if shop is not None:
            shop.stop()
