"""``outbox.atomic()``: the transaction block of code that handlers call.

A service opens ``transaction.atomic()`` so that it is one transaction when a
request calls it; when a handler calls it, that block is nested in the
consumer's transaction and costs a savepoint (a SAVEPOINT and a RELEASE round
trip), which on the consumer's fast path buys nothing: a failing handler
already rolls the whole batch back and the batch is redone event by event.

So inside a fast batch ``atomic()`` joins the batch's transaction without a
savepoint. One case needs care: a handler that catches what a service raised
and goes on (an order's ``Conflict`` it ignores). Without a savepoint Django
can only mark the whole transaction for rollback; the consumer checks that
mark after each handler and redoes the batch the careful way, where every
``atomic()`` is a savepoint again and the handler's choice holds. Everywhere
else (a request, a command, the careful path, a task) it is
``transaction.atomic()``.

The flag belongs to the thread, not to the context: work a handler hands to
another thread in a copy of its context (payments' provider calls), or that
runs after the batch's commit, opens its blocks as ``transaction.atomic()`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

_thread = threading.local()


def atomic() -> transaction.Atomic:
    """``transaction.atomic()``, without a savepoint inside a consumer's fast batch."""
    return transaction.atomic(savepoint=not getattr(_thread, "joining", False))


@contextmanager
def joining() -> Iterator[None]:
    """Within the block, in this thread, ``atomic()`` makes no savepoint (the fast path)."""
    previous = getattr(_thread, "joining", False)
    _thread.joining = True
    try:
        yield
    finally:
        _thread.joining = previous
