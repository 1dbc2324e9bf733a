import pytest

from orders.models import Order
from orders.states import FINAL_STATES, TRANSITIONS, WAITING_STATES, Action, can, next_status
from shop.errors import Conflict

S = Order.Status


def test_the_table_is_the_whole_state_machine():
    assert TRANSITIONS == {
        (S.PENDING, Action.RECORD_STOCK_RESULT): S.PENDING,
        (S.PENDING, Action.RECORD_PAYMENT_RESULT): S.PENDING,
        (S.PENDING, Action.CONFIRM): S.CONFIRMED,
        (S.PENDING, Action.CANCEL): S.CANCELLED,
        (S.PENDING, Action.EXPIRE): S.CANCELLED,
        # a confirmed order is cancelled only once shipping has cancelled its shipment
        (S.CONFIRMED, Action.REQUEST_CANCEL): S.CANCELLING,
        (S.CONFIRMED, Action.RECORD_SHIPMENT_CANCELLED): S.CANCELLED,
        (S.CONFIRMED, Action.SHIP): S.SHIPPED,
        (S.CANCELLING, Action.REQUEST_CANCEL): S.CANCELLING,
        (S.CANCELLING, Action.RECORD_SHIPMENT_CANCELLED): S.CANCELLED,
        (S.CANCELLING, Action.SHIP): S.SHIPPED,
        (S.CANCELLING, Action.EXPIRE): S.CONFIRMED,
    }
    assert FINAL_STATES == {S.SHIPPED, S.CANCELLED}
    assert WAITING_STATES == {S.PENDING, S.CANCELLING}


def test_no_path_leads_from_cancelling_to_cancelled_but_shippings_answer():
    # The semantic lock: only "shipment cancelled" ends a CANCELLING order cancelled.
    into_cancelled = {
        action
        for (src, action), dst in TRANSITIONS.items()
        if src == S.CANCELLING and dst == S.CANCELLED
    }
    assert into_cancelled == {Action.RECORD_SHIPMENT_CANCELLED}


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("action", list(Action))
def test_next_status_follows_the_table_or_raises_conflict(status, action):
    if (status, action) in TRANSITIONS:
        assert can(status, action)
        assert next_status(status, action) == TRANSITIONS[(status, action)]
    else:
        assert not can(status, action)
        with pytest.raises(Conflict) as error:
            next_status(status, action)
        assert error.value.status_code == 409
        assert status.value in error.value.message
