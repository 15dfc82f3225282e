"""The bad-input catalogue's cluster definitions through the API (names, nodes, networks,
frontends, the APT proxy, malformed JSON); the rest of the API's cases and the builders are in
bad_input_cases.py."""

from tests.unit.clusters.web.bad_input_builders import (
    CLUSTERS,
    CONTROL,
    IP_ONLY,
    NAME_RULE,
    OTHER_FP,
    Bad,
    cluster_body,
    node,
    with_node,
)

CLUSTER_CASES = [
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
        "Enter the server's IP address",
        "nodes[0].address",
    ),
    Bad(
        "node-address-subshell",
        CLUSTERS,
        with_node(1, address="$(curl evil.example)"),
        "Enter the server's IP address",
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
    # --- issue 17: "^...$" let a trailing line break through; host names failed setup later --
    Bad("cluster-name-newline", CLUSTERS, cluster_body(name="pg1\n"), CONTROL, "name"),
    Bad("node-name-newline", CLUSTERS, with_node(0, name="node1\n"), CONTROL, "nodes[0].name"),
    Bad(
        "database-user-newline",
        CLUSTERS,
        cluster_body(database={"name": "app", "user": "app\n"}),
        "lower-case letters, digits and underscores",
        "database.user",
    ),
    Bad(
        "database-name-newline",
        CLUSTERS,
        cluster_body(database={"name": "app\n", "user": "app"}),
        "lower-case letters, digits and underscores",
        "database.name",
    ),
    Bad(
        "application-unit-newline",
        CLUSTERS,
        cluster_body(application_unit="myapp.service\n"),
        "Give a systemd service name",
        "application_unit",
    ),
    Bad(
        "check-path-newline",
        CLUSTERS,
        cluster_body(http_frontends=[{"listen_port": 80, "app_port": 8080, "check_path": "/up\n"}]),
        "Give a path starting with /",
        "http_frontends[0].check_path",
    ),
    Bad(
        "apt-proxy-newline",
        CLUSTERS,
        cluster_body(apt_proxy="http://cache:3142\n"),
        CONTROL,
        "apt_proxy",
    ),
    # Client TLS is a JSON boolean: "false" or 0 is not guessed at (a string "false" is true).
    *[
        Bad(
            f"require-client-tls-{i}",
            CLUSTERS,
            cluster_body(require_client_tls=value),
            "Expected true or false",
            "require_client_tls",
        )
        for i, value in enumerate(["false", 0, None, "on", []])
    ],
    Bad(
        "node-address-newline",
        CLUSTERS,
        with_node(0, address="198.18.0.11\n"),
        CONTROL,
        "nodes[0].address",
    ),
    Bad(
        "node-address-host-name",
        CLUSTERS,
        with_node(1, address="db2.example.com"),
        IP_ONLY,
        "nodes[1].address",
    ),
    Bad(
        "node-address-scoped",
        CLUSTERS,
        with_node(1, address="fe80::1%eth0"),
        "scoped address",
        "nodes[1].address",
    ),
    Bad("json-nested-too-deep", CLUSTERS, "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    Bad("json-not-an-object", CLUSTERS, "[1, 2]", "must be a JSON object"),
    Bad("json-broken", CLUSTERS, '{"name": "pg1",', "not valid JSON"),
]
