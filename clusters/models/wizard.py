"""The setup wizard's draft: what an admin typed so far, so a wizard can be resumed later."""

from django.conf import settings
from django.db import models

from clusters.models.inventory import Cluster


class WizardDraft(models.Model):
    """One unfinished setup wizard per user.

    Holds only what was typed into plain fields (names, addresses, ports, credential ids) and
    the scanned fingerprints: secrets never land here. A credential made inside the wizard is
    stored at once, encrypted, through ``credential_create``; the draft keeps its id.
    """

    class Step(models.IntegerChoices):
        CLUSTER = 1, "Cluster"
        SERVERS = 2, "Servers"
        HOST_KEYS = 3, "Host keys"
        PREFLIGHT = 4, "Preflight"
        APPLICATION = 5, "Application"  # added later: migration 0014 moved REVIEW from 5 to 6
        REVIEW = 6, "Review and launch"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, related_name="wizard_draft", on_delete=models.CASCADE
    )
    # The furthest step whose input passed validation + 1: the admin may go back freely but
    # never skip ahead of it.
    reached = models.PositiveSmallIntegerField(choices=Step.choices, default=Step.CLUSTER)
    cluster_fields = models.JSONField(default=dict, blank=True)  # step 1 as typed
    servers = models.JSONField(default=list, blank=True)  # step 2 rows as typed
    # The application step as typed: {"frontends": [{listen_port, app_port, check_path}],
    # "unit": "..."}, all text.
    application = models.JSONField(default=dict, blank=True)
    # "address:port" -> {"fingerprint", "key_type"} or {"error"} from the last scan.
    host_keys = models.JSONField(default=dict, blank=True)
    # Created when the host keys are confirmed (state "new": nothing done on the servers yet).
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL)
    # An id, not a foreign key: clusters never depends on the jobs app.
    preflight_job_id = models.PositiveIntegerField(null=True, blank=True)
    warnings_acknowledged = models.BooleanField(default=False)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"wizard of {self.user} at step {self.reached}"
