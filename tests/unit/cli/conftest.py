"""The fake console for the command line's tests; no proxy may stand between them."""

import pytest

from tests.unit.cli.fake_console import FakeConsole, running


@pytest.fixture
def console(monkeypatch) -> FakeConsole:
    # urllib honours *_proxy variables: loopback traffic must stay on loopback.
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    with running() as fake:
        yield fake
