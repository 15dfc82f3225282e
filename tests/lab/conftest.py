"""Make the lab fixtures available to ``pytest tests/lab`` before a root conftest registers them.

Registers ``tests.lab_fixtures`` only when no one else did, so there is never a second session
``lab`` (two labs would fight over the same namespace names).
"""

from __future__ import annotations

import pytest

PLUGIN = "tests.lab_fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """Import the fixture plugin unless it is already registered."""
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture(scope="module", autouse=True)
def _fresh_hosts(request: pytest.FixtureRequest) -> None:
    """The lab's own tests expect new, empty hosts; earlier modules leave clusters running."""
    lab = request.getfixturevalue("lab")
    lab.down(keep_data=False)
    lab.up(fresh=True)
