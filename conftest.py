"""Root conftest: pytest only accepts plugin registration here."""

pytest_plugins = ["tests.lab_fixtures"]
