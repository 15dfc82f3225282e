"""A job's log: lines redacted, NUL-stripped and written in batches (AWX's job events, small)."""

import threading
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from jobs.models import LogLine

MASK = "********"


class Redactor:
    """Replaces every known secret in a text with a mask, longest secret first."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Very short values would mask ordinary words; the console's secrets are long.
        unique = {s for s in secrets if s and len(s) >= 4}
        self._secrets = sorted(unique, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def clean(text: str) -> str:
    """Text as PostgreSQL can store it: no NUL bytes, no trailing newline."""
    return text.replace("\x00", "").rstrip("\r\n")


class LogWriter:
    """Buffers a job's log lines and writes them with one INSERT per batch.

    Thread-safe: the SSH read loop writes, a heartbeat thread flushes what is pending so a slow
    trickle of output still shows up within a second.
    """

    def __init__(self, job_id: int, redactor: Redactor, *, start_seq: int) -> None:
        self.job_id = job_id
        self.redact = redactor
        self._next_seq = start_seq
        self._pending: list[LogLine] = []
        self._lock = threading.Lock()
        self._batch = settings.JOB_LOG_BATCH_LINES

    @classmethod
    def for_job(cls, job_id: int, redactor: Redactor) -> "LogWriter":
        """A writer that continues the job's log after its last stored line (retries append)."""
        last = LogLine.objects.filter(job_id=job_id).order_by("-seq").values_list("seq", flat=True)
        return cls(job_id, redactor, start_seq=(last.first() or 0) + 1)

    def write(self, text: str, *, stream: str = LogLine.Stream.CONSOLE, host: str = "") -> None:
        """Queue one line (or several, split on newlines) for storage."""
        now = timezone.now()
        with self._lock:
            for line in clean(text).split("\n"):
                self._pending.append(
                    LogLine(
                        job_id=self.job_id,
                        seq=self._next_seq,
                        ts=now,
                        stream=stream,
                        host=host,
                        text=self.redact(clean(line)),
                    )
                )
                self._next_seq += 1
            if len(self._pending) >= self._batch:
                self._flush_locked()

    def flush(self) -> None:
        """Store every queued line now."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending:
            LogLine.objects.bulk_create(self._pending, batch_size=self._batch)
            self._pending = []
