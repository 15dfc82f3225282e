"""The models moved between modules, not between apps: every existing database keeps working.

Django finds a model by app label and name, so the move into sub-packages needs no migration; what
could break an upgrade is a migration file naming code that moved (the encrypted field), or models
that no longer match their migrations. These tests hold both."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from clusters.models import Cluster, Credential, Node, NodeStatus
from jobs.models import Job

# The schema a console of the previous release runs (its latest migrations), one step back so
# the upgrade applies a migration to tables that hold data.
EARLIER = [("clusters", "0009_wizard_draft"), ("jobs", "0007_node_change_kinds")]


@pytest.mark.django_db
def test_models_match_their_migrations() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"the models need a migration the repository does not have:\n{out.getvalue()}")


@pytest.mark.django_db(transaction=True)
def test_upgrade_from_an_earlier_schema_keeps_the_data_and_its_secrets() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(EARLIER)
    old = executor.loader.project_state(EARLIER).apps
    credential = old.get_model("clusters", "Credential").objects.create(
        name="lab", username="root", password="s3cret-Pa55"
    )
    cluster = old.get_model("clusters", "Cluster").objects.create(name="pg1", state="healthy")
    node = old.get_model("clusters", "Node").objects.create(
        cluster=cluster,
        name="node1",
        address="198.18.0.11",
        credential=credential,
        kind="database",
        host_key_type="ssh-ed25519",
        host_key_base64="AAAA",
        host_key_fingerprint="SHA256:x",
    )
    old.get_model("clusters", "NodeStatus").objects.create(node=node, role="primary")
    old.get_model("jobs", "Job").objects.create(cluster=cluster, kind="setup", status="succeeded")

    executor = MigrationExecutor(connection)  # a new loader sees the graph from scratch
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert Credential.objects.get(name="lab").password == "s3cret-Pa55"
    assert Cluster.objects.get(name="pg1").state == "healthy"
    assert Node.objects.get(name="node1").credential.username == "root"
    status = NodeStatus.objects.get(node__name="node1")
    assert (status.role, status.lag_minutes) == ("primary", [])  # 0010's field, with its default
    assert Job.objects.get(cluster__name="pg1").kind == "setup"
