"""HA Center: a web console that builds and runs PostgreSQL HA clusters."""

from hacenter.celery import app as celery_app

__all__ = ["celery_app"]
