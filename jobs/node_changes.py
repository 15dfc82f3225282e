"""Node changes as the console starts them: the inventory write and its job, in one transaction,
so a refused job (another job runs, the cluster is not set up) leaves the inventory as it was."""

from django.db import transaction

from clusters.inventory.services import node_create, node_repoint
from clusters.models import Cluster, Node
from jobs.models import Job
from jobs.services import job_start


def node_add(*, cluster: Cluster, data: dict, requested_by=None) -> Job:
    """Put a new database server into a running cluster's inventory and start the `add_node`
    job that makes it a streaming standby. Nothing is written if the input is invalid or the
    job is refused."""
    with transaction.atomic():
        created = node_create(cluster=cluster, data=data)
        return job_start(cluster=cluster, kind="add_node", node=created, requested_by=requested_by)


def node_replace(*, node: Node, data: dict, requested_by=None) -> Job:
    """Point `node`'s name at a new server and start the `replace_node` job; the old address
    goes into the job's params. Nothing changes if the input or the job is refused."""
    with transaction.atomic():
        old_address = node_repoint(node=node, data=data)
        return job_start(
            cluster=node.cluster,
            kind="replace_node",
            node=node,
            params={"old_address": old_address},
            requested_by=requested_by,
        )
