"""Errors of jobs: those the job services raise for callers (views, API) to show as they are,
and those a step raises to end itself."""


class JobRefused(Exception):
    """A job cannot start or change now; the message says why and what to do."""


class JobConflict(JobRefused):
    """Refused because of another job or the job's own state (HTTP 409), not bad input."""


class StepFailed(Exception):
    """A step's check or action did not pass; the message is its one-line verdict."""


class StepCancelled(Exception):
    """The operator cancelled the job while a step was waiting."""


class StepSkipped(Exception):
    """A step that cannot run because of an earlier failure (say, no SSH login to its node)."""
