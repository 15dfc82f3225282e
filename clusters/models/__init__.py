"""Models of the clusters app, one module per topic."""

from .access import ApiToken, AuditEntry
from .alerts import AlertChannel, AlertDelivery
from .inventory import Cluster, ClusterSecret, Credential, Node, ScannedHostKey
from .observed import ClusterAlarm, ClusterEvent, NodeStatus, StatusSample
from .wizard import WizardDraft

__all__ = [
    "AlertChannel",
    "AlertDelivery",
    "ApiToken",
    "AuditEntry",
    "Cluster",
    "ClusterAlarm",
    "ClusterEvent",
    "ClusterSecret",
    "Credential",
    "Node",
    "NodeStatus",
    "ScannedHostKey",
    "StatusSample",
    "WizardDraft",
]
