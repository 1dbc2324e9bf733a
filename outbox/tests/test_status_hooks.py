"""OUTBOX_STATUS_HOOKS: a project adds its own figures to the outbox's status report."""

import pytest

from outbox.status import status


def stuck_work() -> dict[str, int]:
    return {"stuck_things": 3}


@pytest.mark.django_db
def test_the_hooks_dicts_are_merged_into_the_status(settings):
    settings.OUTBOX_STATUS_HOOKS = ["outbox.tests.test_status_hooks.stuck_work"]

    report = status()

    assert report["stuck_things"] == 3
    assert {"unpublished", "groups", "dead_letters"} <= set(report)


@pytest.mark.django_db
def test_a_hook_cannot_hide_the_outboxs_own_figures(settings):
    settings.OUTBOX_STATUS_HOOKS = ["outbox.tests.test_status_hooks.lying"]

    assert status()["unpublished"] == 0


def lying() -> dict[str, int]:
    return {"unpublished": -1}
