"""Models of the clusters app, one module per topic."""

from clusters.models.access import ApiToken, AuditEntry
from clusters.models.alerts import AlertChannel, AlertDelivery
from clusters.models.backups import BackupPolicy
from clusters.models.fencing import FenceDevice
from clusters.models.incidents import Incident
from clusters.models.inventory import Cluster, ClusterSecret, Credential, Node, ScannedHostKey
from clusters.models.observed import ClusterAlarm, ClusterEvent, NodeStatus, StatusSample
from clusters.models.subscriptions import DeliveryStatus, EventDelivery, EventSubscription
from clusters.models.versions import NodeVersions
from clusters.models.wizard import WizardDraft

__all__ = [
    "AlertChannel",
    "AlertDelivery",
    "ApiToken",
    "AuditEntry",
    "BackupPolicy",
    "Cluster",
    "ClusterAlarm",
    "ClusterEvent",
    "ClusterSecret",
    "Credential",
    "DeliveryStatus",
    "EventDelivery",
    "EventSubscription",
    "FenceDevice",
    "Incident",
    "Node",
    "NodeStatus",
    "NodeVersions",
    "ScannedHostKey",
    "StatusSample",
    "WizardDraft",
]
