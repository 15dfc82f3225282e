"""What the admin reads when an SSH connection drops under a step (the chaos suite's ssh_drop)."""

from clusters.models import Node
from jobs.models import Step
from jobs.runner import failure_line
from jobs.ssh import lost_message


def test_lost_message_says_the_orphaned_command_was_killed():
    assert lost_message("198.18.0.11:22", 4242, killed=True) == (
        "SSH connection to 198.18.0.11:22 lost while a command ran; its process group 4242 "
        "was killed over a new connection"
    )


def test_lost_message_warns_when_the_command_may_still_run():
    assert lost_message("198.18.0.11:22", 4242, killed=False).endswith(
        "it may still run there (process group 4242; killing it failed)"
    )
    assert "had not reported its process group" in lost_message("h:22", None, killed=False)


def test_a_lost_connection_names_the_node_it_went_to():
    from jobs.ssh import Auth, Connection

    conn = Connection("198.18.0.11", 22, None, Auth(username="root", password="x"), name="node1")
    assert conn.label == "node1 (198.18.0.11:22)"
    assert lost_message(conn.label, 7, killed=True).startswith(
        "SSH connection to node1 (198.18.0.11:22) lost while a command ran"
    )


def test_a_failed_step_is_named_with_its_node():
    step = Step(title="Configure Patroni", node=Node(name="node2"))
    assert failure_line(step, "boom") == "Configure Patroni on node2: boom"
    assert failure_line(Step(title="etcd cluster healthy"), "boom") == "etcd cluster healthy: boom"
