import itertools

import pytest

from outbox.layout import SLOT_COUNT, Layout, slot_for


@pytest.mark.parametrize("partitions", [1, 2, 3, 5, 8, 13, 4096])
def test_partitions_are_contiguous_ranges_of_slots_that_cover_every_slot_once(partitions):
    layout = Layout("p", partitions, 1)
    ranges = [layout.slots(p) for p in range(partitions)]
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOT_COUNT
    assert all(high == next_low for (_, high), (next_low, _) in itertools.pairwise(ranges))
    for partition, (low, high) in enumerate(ranges):
        assert low < high
        assert {layout.partition_of(slot) for slot in range(low, high)} == {partition}


def test_an_aggregate_s_slot_is_stable_and_in_range():
    assert slot_for("order", "42") == slot_for("order", "42")
    assert 0 <= slot_for("order", "42") < SLOT_COUNT
    assert slot_for("order", "42") != slot_for("order", "43")
