"""Settings for the test suite: the app's settings with fixed test keys and a private queue.

Set before hacenter.settings is read, so pytest and the Celery workers the tests start agree.
"""

import os

# Never a developer's .env: `make test-unit` must pass in a checkout where `make run` wrote one
# (HACENTER_DEBUG=true there would turn off the production settings the tests check).
os.environ["HACENTER_ENV_FILE"] = ""
os.environ.setdefault("HACENTER_SECRET_KEY", "test-secret-key-not-for-production")
# A fixed Fernet key: tests decrypt what their workers encrypted.
os.environ.setdefault("HACENTER_FIELD_KEYS", "mHXwKJvS1bq0m4ibt5Vw6Vp1Fz0V8mLQ2Kj3r9o2b3E=")
os.environ.setdefault("HACENTER_QUEUE", f"hacenter-test-{os.getpid()}")
os.environ.setdefault("HACENTER_SECURE_COOKIES", "false")
# The workers a test starts consume the test queue only: the monitor's tasks must go there too.
os.environ["HACENTER_MONITOR_QUEUE"] = ""

from hacenter.settings import *  # noqa: F403
from hacenter.settings import DATABASES

# The workers a test starts run outside pytest: they are told the test database's name.
if os.environ.get("HACENTER_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["HACENTER_TEST_DB_NAME"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users
HACENTER_EXTRA_PLAYBOOKS = ["tests.integration.shell_playbook"]
