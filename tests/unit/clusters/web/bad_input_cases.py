"""The bad-input catalogue's API half and its builders; the pages' half and the test are in
test_bad_input.py, the wizard's in test_bad_input_wizard.py, the fixtures in conftest.py.

Each case must be refused with a 4xx and a message that says what is wrong, leave every
inventory and job table exactly as it was, ask no worker to touch a server, and leave a
"refused" row in the audit trail. Shell metacharacters are tried in every free-text field.
"""

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

FP = "SHA256:" + "B" * 43
OTHER_FP = "SHA256:" + "C" * 43


def _key(passphrase: bytes | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        .decode()
    )


ENCRYPTED_KEY = _key(b"the passphrase")
PLAIN_KEY = _key()
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ ops"


def node(i: int, **changes) -> dict:
    base = {
        "name": ("node1", "node2", "proxy")[i],
        "address": f"198.18.0.{11 + i}",
        "ssh_port": 22,
        "credential": "CRED",
        "host_key_fingerprint": FP,
        "kind": "proxy" if i == 2 else "database",
    }
    return base | changes


def cluster_body(**changes) -> dict:
    body = {
        "name": "pg1",
        "replication": "async",
        "nodes": [node(0), node(1), node(2)],
        "client_networks": ["10.20.0.0/16"],
        "database": {"name": "app", "user": "app"},
    }
    return body | changes


def with_node(i: int, **changes) -> dict:
    nodes = [node(0), node(1), node(2)]
    nodes[i] = node(i, **changes)
    return cluster_body(nodes=nodes)


def cred_body(**changes) -> dict:
    return {"name": "new", "username": "root", "password": "pw-123456"} | changes


@dataclass
class Bad:
    id: str
    url: str
    body: dict | bytes | str
    message: str  # what the answer must say (HTML entities decoded)
    field: str | None = None  # the API's field_errors key that must carry the message
    status: int = 400
    page: bool = False  # a form POST to a page rather than a JSON API call


CREDS, CLUSTERS, SCAN = "/api/v1/credentials/", "/api/v1/clusters/", "/api/v1/host-keys/scan/"
JOBS = "/api/v1/clusters/EXISTING/jobs/"
NODES = "/api/v1/clusters/EXISTING/nodes/"
LETTERS = "Use 1–100 letters"
NAME_RULE = "Use 1–63 lower-case letters"
TEN_MB = "A" * (10 * 1024 * 1024)

API_CASES = [
    # --- credentials through the API --------------------------------------------------------
    Bad("cred-name-semicolon", CREDS, cred_body(name="lab; rm -rf /"), LETTERS, "name"),
    Bad("cred-name-subshell", CREDS, cred_body(name="$(reboot)"), LETTERS, "name"),
    Bad("cred-name-backtick", CREDS, cred_body(name="`id`"), LETTERS, "name"),
    Bad("cred-name-pipe", CREDS, cred_body(name="lab|nc evil 1"), LETTERS, "name"),
    Bad("cred-name-duplicate", CREDS, cred_body(name="lab"), "exists already", "name"),
    Bad("cred-user-and", CREDS, cred_body(username="root && reboot"), "Unix user", "username"),
    Bad("cred-user-redirect", CREDS, cred_body(username="root>/etc/x"), "Unix user", "username"),
    Bad(
        "cred-password-newline",
        CREDS,
        cred_body(password="pw\nreboot"),
        "Control characters",
        "password",
    ),
    Bad("cred-password-huge", CREDS, cred_body(password="p" * 2000), "At most 1024", "password"),
    Bad(
        "cred-key-with-passphrase-none-given",
        CREDS,
        cred_body(password="", private_key=ENCRYPTED_KEY),
        "encrypted key needs a passphrase",
        "private_key",
    ),
    Bad(
        "cred-key-wrong-passphrase",
        CREDS,
        cred_body(password="", private_key=ENCRYPTED_KEY, passphrase="not it"),
        "wrong passphrase",
        "private_key",
    ),
    Bad(
        "cred-key-public",
        CREDS,
        cred_body(password="", private_key=PUBLIC_KEY),
        "this is a public key",
        "private_key",
    ),
    Bad(
        "cred-key-garbage",
        CREDS,
        cred_body(password="", private_key="hello; reboot"),
        "not a private key",
        "private_key",
    ),
    Bad(
        "cred-key-non-utf8",
        CREDS,
        b'{"name": "new", "username": "root", "private_key": "-----BEGIN \xff\xfe KEY"}',
        "not UTF-8",
    ),
    Bad(
        "cred-key-lone-surrogate",
        CREDS,
        '{"name": "new", "username": "root", "private_key": "\\udcff\\udcfe"}',
        "broken Unicode escape",
    ),
    Bad(
        "cred-key-20kb",
        CREDS,
        cred_body(password="", private_key="A" * 20_000),
        "a private key is at most 16 KB",
        "private_key",
    ),
    Bad(
        "cred-key-10mb-paste",
        CREDS,
        cred_body(password="", private_key=TEN_MB),
        "the console accepts at most 1024 KB",
        status=413,
    ),
    Bad(
        "cred-key-and-password",
        CREDS,
        cred_body(private_key=PLAIN_KEY),
        "either a private key or a password",
        "non_field_errors",
    ),
    Bad(
        "cred-passphrase-without-key",
        CREDS,
        cred_body(passphrase="x"),
        "only goes with a private key",
        "passphrase",
    ),
    # --- clusters through the API -----------------------------------------------------------
    Bad("cluster-name-semicolon", CLUSTERS, cluster_body(name="pg1;reboot"), NAME_RULE, "name"),
    Bad("cluster-name-subshell", CLUSTERS, cluster_body(name="$(id)"), NAME_RULE, "name"),
    Bad("cluster-name-64", CLUSTERS, cluster_body(name="p" * 64), "at most 63", "name"),
    Bad("cluster-name-taken", CLUSTERS, cluster_body(name="pg0"), "exists already", "name"),
    Bad(
        "cluster-replication-injected",
        CLUSTERS,
        cluster_body(replication="sync; reboot"),
        "Select a valid choice",
        "replication",
    ),
    Bad(
        "cluster-profile-unknown",
        CLUSTERS,
        cluster_body(failover_profile="turbo"),
        "Select a valid choice",
        "failover_profile",
    ),
    Bad(
        "cluster-postgres-9",
        CLUSTERS,
        cluster_body(postgres_version=9),
        "greater than or equal to 13",
        "postgres_version",
    ),
    Bad("node-name-backtick", CLUSTERS, with_node(0, name="node1`id`"), NAME_RULE, "nodes[0].name"),
    Bad(
        "node-address-semicolon",
        CLUSTERS,
        with_node(0, address="198.18.0.11; reboot"),
        "Enter an IP address or a host name",
        "nodes[0].address",
    ),
    Bad(
        "node-address-subshell",
        CLUSTERS,
        with_node(1, address="$(curl evil.example)"),
        "Enter an IP address or a host name",
        "nodes[1].address",
    ),
    Bad(
        "node-address-loopback",
        CLUSTERS,
        with_node(0, address="127.0.0.1"),
        "loopback address",
        "nodes[0].address",
    ),
    Bad(
        "node-address-localhost",
        CLUSTERS,
        with_node(0, address="localhost"),
        "this machine's own name",
        "nodes[0].address",
    ),
    Bad(
        "node-address-link-local",
        CLUSTERS,
        with_node(0, address="fe80::1"),
        "link-local",
        "nodes[0].address",
    ),
    Bad(
        "node-address-300-chars",
        CLUSTERS,
        with_node(0, address="a" * 300),
        "at most 253",
        "nodes[0].address",
    ),
    Bad("node-port-0", CLUSTERS, with_node(0, ssh_port=0), "greater than or equal to 1"),
    Bad("node-port-65536", CLUSTERS, with_node(0, ssh_port=65536), "less than or equal to 65535"),
    Bad(
        "node-port-injected",
        CLUSTERS,
        with_node(0, ssh_port="22; reboot"),
        "Enter a whole number",
        "nodes[0].ssh_port",
    ),
    Bad(
        "node-address-duplicate",
        CLUSTERS,
        with_node(1, address="198.18.0.11"),
        "Two nodes have this address",
        "nodes[1].address",
    ),
    Bad(
        "node-address-same-server-other-spelling",
        CLUSTERS,
        with_node(1, address="::ffff:198.18.0.11"),
        "Two nodes have this address",
        "nodes[1].address",
    ),
    Bad(
        "node-address-same-server-other-port",
        CLUSTERS,
        with_node(1, address="198.18.0.11", ssh_port=2222),
        "Two nodes have this address",
        "nodes[1].address",
    ),
    Bad(
        "node-address-in-another-cluster",
        CLUSTERS,
        with_node(1, address="198.18.0.21"),
        "already belongs to another cluster",
        "nodes[1].address",
    ),
    Bad(
        "node-fingerprint-md5",
        CLUSTERS,
        with_node(0, host_key_fingerprint="MD5:aa:bb:cc"),
        "Expected a SHA256 fingerprint",
        "nodes[0].host_key_fingerprint",
    ),
    Bad(
        "node-fingerprint-never-scanned",
        CLUSTERS,
        with_node(0, host_key_fingerprint=OTHER_FP),
        "was not seen at this address",
        "nodes[0].host_key_fingerprint",
    ),
    Bad(
        "node-kind-unknown",
        CLUSTERS,
        with_node(0, kind="witness"),
        "Select a valid choice",
        "nodes[0].kind",
    ),
    Bad(
        "node-credential-missing",
        CLUSTERS,
        with_node(0, credential=99999),
        "No such credential",
        "nodes[0].credential",
    ),
    Bad(
        "nodes-ten",
        CLUSTERS,
        cluster_body(nodes=[node(0)] * 10),
        "At most 9 nodes",
        "nodes",
    ),
    Bad("nodes-not-a-list", CLUSTERS, cluster_body(nodes={"a": 1}), "Give the cluster's servers"),
    *[
        Bad(
            f"apt-proxy-{i}", CLUSTERS, cluster_body(apt_proxy=url), "http://host:port", "apt_proxy"
        )
        for i, url in enumerate(
            [
                "ftp://cache:3142",  # not HTTP
                "http://user:secret@cache:3142",  # a password stored and passed in clear
                "http://cache:3142/debian",  # a path: that is a mirror, not a proxy
                "http://cache:3142 -o APT::Get::AllowUnauthenticated=1",  # smuggled options
                "http://$(reboot):3142",
                "cache:3142",
            ]
        )
    ],
    Bad(
        "network-host-bits",
        CLUSTERS,
        cluster_body(client_networks=["10.0.0.1/8"]),
        "has host bits set",
        "client_networks[0]",
    ),
    Bad(
        "network-prefix-33",
        CLUSTERS,
        cluster_body(client_networks=["10.0.0.0/33"]),
        "not a network in CIDR form",
        "client_networks[0]",
    ),
    Bad(
        "network-everything",
        CLUSTERS,
        cluster_body(client_networks=["0.0.0.0/0"]),
        "every address on the internet",
        "client_networks[0]",
    ),
    Bad(
        "network-overlapping",
        CLUSTERS,
        cluster_body(client_networks=["10.0.0.0/8", "10.1.0.0/16"]),
        "overlaps 10.0.0.0/8",
        "client_networks[1]",
    ),
    Bad(
        "network-injected",
        CLUSTERS,
        cluster_body(client_networks=["10.0.0.0/8; reboot"]),
        "not a network in CIDR form",
        "client_networks[0]",
    ),
    Bad(
        "network-51",
        CLUSTERS,
        cluster_body(client_networks=[f"10.{i}.0.0/16" for i in range(51)]),
        "at most 50 networks",
        "client_networks",
    ),
    Bad(
        "database-name-injected",
        CLUSTERS,
        cluster_body(database={"name": "app; DROP DATABASE x", "user": "app"}),
        "lower-case letters, digits and underscores",
        "database.name",
    ),
    Bad(
        "database-user-postgres",
        CLUSTERS,
        cluster_body(database={"name": "app", "user": "postgres"}),
        "PostgreSQL or HA Center uses itself",
        "database.user",
    ),
    Bad(
        "database-user-replicator",
        CLUSTERS,
        cluster_body(database={"name": "app", "user": "replicator"}),
        "PostgreSQL or HA Center uses itself",
        "database.user",
    ),
    Bad(
        "http-frontend-on-postgres-port",
        CLUSTERS,
        cluster_body(http_frontends=[{"listen_port": 5432, "app_port": 8080}]),
        "Port 5432 is taken",
        "http_frontends[0]",
    ),
    Bad("json-nested-too-deep", CLUSTERS, "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    Bad("json-not-an-object", CLUSTERS, "[1, 2]", "must be a JSON object"),
    Bad("json-broken", CLUSTERS, '{"name": "pg1",', "not valid JSON"),
    # --- adding and replacing servers ------------------------------------------------------
    Bad(
        "node-add-address-subshell",
        NODES,
        {"name": "node3", "address": "$(reboot)", "credential": "CRED", "host_key_fingerprint": FP},
        "Enter an IP address or a host name",
        "address",
    ),
    Bad(
        "node-add-same-server-other-port",
        NODES,
        {
            "name": "node3",
            "address": "198.18.0.21",
            "ssh_port": 2222,
            "credential": "CRED",
            "host_key_fingerprint": FP,
        },
        "already belongs to a cluster",
        "address",
    ),
    Bad(
        "node-replace-name-in-url-injected",
        NODES + "node1;reboot/replace/",
        {"address": "198.18.0.31", "credential": "CRED", "host_key_fingerprint": FP},
        "No Node matches the given query",
        status=404,
    ),
    # --- host-key scans: validated before a worker is asked ---------------------------------
    Bad(
        "scan-address-subshell",
        SCAN,
        {"address": "$(reboot)", "port": 22},
        "Enter an IP address",
        "address",
    ),
    Bad("scan-address-space", SCAN, {"address": "a b", "port": 22}, "Enter an IP", "address"),
    Bad("scan-port-text", SCAN, {"address": "198.18.0.11", "port": "22"}, "1 to 65535", "port"),
    Bad("scan-port-0", SCAN, {"address": "198.18.0.11", "port": 0}, "1 to 65535", "port"),
    # --- jobs ------------------------------------------------------------------------------
    Bad("job-kind-injected", JOBS, {"kind": "preflight; reboot"}, "unknown job kind", "kind"),
    Bad(
        "job-node-injected",
        JOBS,
        {"kind": "rebuild", "node": "node1; reboot"},
        "has no node",
        "node",
    ),
    Bad(
        "job-service-manager-injected",
        JOBS,
        {"kind": "setup", "service_manager": "systemd; reboot"},
        "Use systemd or process",
        "service_manager",
    ),
    Bad("job-confirm-list", JOBS, {"kind": "remove_cluster", "confirm": ["pg0"]}, "cluster's name"),
    Bad(
        "job-remove-confirm-injected",
        JOBS,
        {"kind": "remove_cluster", "confirm": "pg0; reboot"},
        "repeat the cluster's name",
    ),
]
