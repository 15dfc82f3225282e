"""Errors the job services raise for callers (views, API) to show as they are."""


class JobRefused(Exception):
    """A job cannot start or change now; the message says why and what to do."""


class JobConflict(JobRefused):
    """Refused because of another job or the job's own state (HTTP 409), not bad input."""
