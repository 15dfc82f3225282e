"""The chaos suite uses the integration tests' worker and their wait-for-idle-workers flush."""

from tests.integration.conftest import _workers_idle_before_flush, worker  # noqa: F401
