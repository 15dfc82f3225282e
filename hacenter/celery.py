"""The Celery application; tasks live in a `tasks` module beside the services they call and stay
thin."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hacenter.settings")

app = Celery("hacenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each package with a tasks module: the jobs, the monitor, the alerts, the event subscriptions.
app.autodiscover_tasks(["jobs", "clusters.monitoring", "clusters.alerts", "clusters.subscriptions"])
