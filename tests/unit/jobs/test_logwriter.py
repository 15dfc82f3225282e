"""Log lines: secrets masked and NUL bytes stripped before storage, written in batches."""

import pytest

from clusters.models import Cluster, Credential
from jobs.logwriter import MASK, LogWriter, Redactor, clean
from jobs.models import Job, LogLine


def test_every_secret_is_masked_longest_first():
    redact = Redactor(["hunter22", "hunter22-and-more", "abc"])
    assert redact("pw=hunter22-and-more; old=hunter22") == f"pw={MASK}; old={MASK}"
    assert redact("abc stays: too short to be a secret") == "abc stays: too short to be a secret"


def test_nul_bytes_and_line_ends_are_stripped():
    assert clean("a\x00b\r\n") == "ab"


@pytest.mark.django_db
def test_writer_stores_redacted_lines_in_order_in_batches(settings, django_assert_max_num_queries):
    settings.JOB_LOG_BATCH_LINES = 100
    cred = Credential.objects.create(name="c", username="root", password="topsecret-pw")
    cluster = Cluster.objects.create(name="c1")
    job = Job.objects.create(kind="preflight", cluster=cluster, mutating=False)
    writer = LogWriter.for_job(job.pk, Redactor(cred.secret_values()))
    with django_assert_max_num_queries(3):  # 250 lines: two full batches, no query per line
        for i in range(250):
            writer.write(f"line {i} topsecret-pw \x00", stream="stdout", host="node1")
    writer.flush()
    texts = list(LogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))
    assert texts == [f"line {i} {MASK} " for i in range(250)]
    # A retry continues the sequence instead of colliding with it.
    LogWriter.for_job(job.pk, Redactor([])).write("again")
    assert LogWriter.for_job(job.pk, Redactor([]))._next_seq == 251


def test_private_key_lines_are_secrets_of_their_own():
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END"
    )
    cred = Credential(name="k", username="root", private_key=key)
    redact = Redactor(cred.secret_values())
    assert "b3BlbnNzaC1rZXkt" not in redact("echo b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ")
