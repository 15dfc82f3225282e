"""The chaos suite owns its worker (some faults kill it) and uses the integration tests'
wait-for-idle-workers flush."""

import pytest

from tests.integration.conftest import _workers_idle_before_flush  # noqa: F401
from tests.workers import WorkerSlot


@pytest.fixture(scope="module")
def workers(django_db_setup, django_db_blocker):
    """The module's one Celery worker, which a fault may kill and replace."""
    with django_db_blocker.unblock():
        slot = WorkerSlot("chaos")
    yield slot
    slot.stop()
