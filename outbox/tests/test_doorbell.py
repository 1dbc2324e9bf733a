from outbox.doorbell import Doorbell, ring


def test_a_burst_of_rings_sends_one_task_until_the_holder_is_done(redis_client):
    bell = Doorbell.relay(0)
    sent: list[int] = []
    # when news arrives three times before any task ran
    for n in range(3):
        ring(redis_client, [(bell, lambda n=n: sent.append(n))])
    # then one task was sent
    assert sent == [0]
    # the holder looks (clears dirty); nothing new came: it is done and may stop
    bell.clear(redis_client)
    assert bell.done(redis_client) is False
    # the next news sends a task again
    ring(redis_client, [(bell, lambda: sent.append(9))])
    assert sent == [0, 9]


def test_news_during_the_holder_s_run_makes_it_go_on(redis_client):
    bell = Doorbell.consumer("orders", 0)
    sent: list[str] = []
    ring(redis_client, [(bell, lambda: sent.append("first"))])
    bell.clear(redis_client)  # the holder starts looking
    ring(redis_client, [(bell, lambda: sent.append("second"))])  # news while it works
    assert sent == ["first"]  # no second task: the holder will see it
    assert bell.done(redis_client) is True  # ... and it does


def test_ringing_several_bells_sends_only_for_the_idle_ones(redis_client):
    busy, idle = Doorbell.consumer("a", 0), Doorbell.consumer("b", 0)
    ring(redis_client, [(busy, lambda: None)])
    sent: list[str] = []
    ring(redis_client, [(busy, lambda: sent.append("a")), (idle, lambda: sent.append("b"))])
    assert sent == ["b"]
