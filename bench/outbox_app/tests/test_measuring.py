import math

from bench.outbox_app.measuring import CpuMeter, median, percentile, proc_stat, summary_ms


def test_percentile_interpolates_between_ranks():
    # given
    ordered = [10.0, 20.0, 30.0, 40.0, 50.0]

    # when
    p50, p90, p100 = percentile(ordered, 50), percentile(ordered, 90), percentile(ordered, 100)

    # then
    assert (p50, p90, p100) == (30.0, 46.0, 50.0)


def test_percentile_of_nothing_is_nan_and_of_one_value_is_that_value():
    # given / when
    empty, single = percentile([], 99), percentile([7.0], 99)

    # then
    assert math.isnan(empty)
    assert single == 7.0


def test_median_sorts_first():
    # given / when
    value = median([5.0, 1.0, 3.0, 2.0])

    # then
    assert value == 2.5


def test_summary_is_in_milliseconds_of_seconds():
    # given
    seconds = [0.001 * n for n in range(1, 101)]  # 1 .. 100 ms

    # when
    summary = summary_ms(seconds)

    # then
    assert summary["samples"] == 100
    assert summary["p50"] == 50.5
    assert summary["p99"] == 99.01
    assert summary["max"] == 100.0
    assert summary["mean"] == 50.5


def test_cpu_meter_counts_this_process_and_reads_a_local_process():
    # given
    import os

    meter = CpuMeter(backend_pid=os.getpid())  # this process stands in for a backend

    # when
    with meter:
        sum(n * n for n in range(300_000))

    # then
    figures = meter.per_event_ms(1000)
    assert meter.client > 0
    assert figures["client"] > 0
    assert figures["postgres"] is not None
    assert proc_stat(os.getpid())[0] == os.getpgrp()
