import pytest

from orders.models import Order
from orders.states import FINAL_STATES, TRANSITIONS, Action, can, next_status
from shop.errors import Conflict

S = Order.Status


def test_the_table_is_the_whole_state_machine():
    assert TRANSITIONS == {
        (S.PENDING, Action.RECORD_STOCK_RESULT): S.PENDING,
        (S.PENDING, Action.RECORD_PAYMENT_RESULT): S.PENDING,
        (S.PENDING, Action.CONFIRM): S.CONFIRMED,
        (S.PENDING, Action.CANCEL): S.CANCELLED,
        (S.CONFIRMED, Action.CANCEL): S.CANCELLED,
        (S.CONFIRMED, Action.SHIP): S.SHIPPED,
    }
    assert FINAL_STATES == {S.SHIPPED, S.CANCELLED}


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
