"""Forms that validate what admins type, used by the pages and the API alike."""

import ipaddress

from django import forms
from django.conf import settings

from clusters.inventory import ssh_keys, validators
from clusters.models import Cluster, Credential, Node

MAX_KEY_BYTES = 16 * 1024  # an RSA-8192 key in PEM is about 6.5 KB


class CredentialForm(forms.Form):
    """An SSH login: user and either a private key (optionally with passphrase) or a password."""

    name = forms.CharField(max_length=100, validators=[validators.validate_label])
    username = forms.CharField(max_length=32, validators=[validators.validate_unix_user])
    private_key = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    passphrase = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput,
        validators=[validators.validate_secret_text],
    )
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput,
        validators=[validators.validate_secret_text],
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Credential.objects.filter(name=name).exists():
            raise forms.ValidationError("A credential with this name exists already.")
        return name

    def clean_private_key(self) -> str:
        key = self.cleaned_data["private_key"]
        if len(key.encode()) > MAX_KEY_BYTES:
            raise forms.ValidationError(
                f"This is {len(key.encode()) // 1024} KB; a private key is at most "
                f"{MAX_KEY_BYTES // 1024} KB. Paste the private key file only."
            )
        return key.strip() + "\n" if key.strip() else ""

    def clean(self) -> dict:
        data = super().clean()
        key, password = data.get("private_key"), data.get("password")
        if "private_key" not in data:
            return data
        if bool(key) == bool(password):
            raise forms.ValidationError("Give either a private key or a password, not both.")
        if key:
            try:
                ssh_keys.parse_private_key(key, data.get("passphrase") or None)
            except ssh_keys.InvalidPrivateKey as exc:
                self.add_error("private_key", str(exc))
        elif data.get("passphrase"):
            self.add_error("passphrase", "A passphrase only goes with a private key.")
        return data


class ClusterForm(forms.Form):
    """The cluster's own settings (nodes are validated by NodeForm, then together)."""

    name = forms.CharField(max_length=63, validators=[validators.validate_name])
    replication = forms.ChoiceField(choices=Cluster.Replication.choices, initial="async")
    failover_profile = forms.ChoiceField(
        choices=Cluster.FailoverProfile.choices, initial="balanced", required=False
    )
    postgres_version = forms.IntegerField(min_value=13, max_value=17, initial=15, required=False)
    sync_strict = forms.BooleanField(required=False)
    apt_proxy = forms.CharField(
        max_length=200, required=False, validators=[validators.validate_apt_proxy]
    )
    # Take over the PostgreSQL already running on the master (its data, roles, settings) instead
    # of initialising an empty cluster.
    adopt_database = forms.BooleanField(required=False)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Cluster.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A cluster named {name} exists already.")
        return name


class NodeForm(forms.Form):
    """One server: where to reach it, how to log in, the host key the admin confirmed."""

    name = forms.CharField(max_length=63, validators=[validators.validate_name])
    address = forms.CharField(max_length=253, validators=[validators.validate_server_address])
    ssh_port = forms.IntegerField(min_value=1, max_value=65535, initial=22, required=False)
    credential = forms.ModelChoiceField(
        queryset=Credential.objects.all(),
        error_messages={"invalid_choice": "No such credential; create it first."},
    )
    host_key_fingerprint = forms.CharField(validators=[validators.validate_fingerprint])
    kind = forms.ChoiceField(choices=Node.Kind.choices)
    master = forms.BooleanField(required=False)  # bootstrap this database node as the primary

    def clean_address(self) -> str:
        return validators.normalize_address(self.cleaned_data["address"])


# Roles HA Center creates on every cluster: the application may not take one of their names.
RESERVED_DATABASE_ROLES = frozenset(
    {"postgres", "replicator", "rewind_user", "hacenter", "hacenter_monitor", "public"}
)
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})


def validate_database(data: object, errors: dict[str, list[str]]) -> dict[str, str]:
    """The optional application database: {name, user}, both SQL identifiers."""
    if data in (None, {}):
        return {}
    if not isinstance(data, dict):
        errors["database"] = ["Expected an object with name and user."]
        return {}
    result = {}
    for key in ("name", "user"):
        value = data.get(key)
        try:
            if not isinstance(value, str):
                raise forms.ValidationError("This field is required.")
            validators.validate_sql_identifier(value)
            reserved = RESERVED_DATABASE_ROLES if key == "user" else RESERVED_DATABASES
            if value in reserved:
                raise forms.ValidationError(
                    f"{value} is a name PostgreSQL or HA Center uses itself; choose another."
                )
            result[key] = value
        except forms.ValidationError as exc:
            errors[f"database.{key}"] = list(exc.messages)
    return result


def validate_client_networks(data: object, errors: dict[str, list[str]]) -> list[str]:
    if data in (None, ""):
        return []
    if not isinstance(data, list) or len(data) > 50:
        errors["client_networks"] = ["Expected a list of at most 50 networks in CIDR form."]
        return []
    networks: list[str] = []
    for i, value in enumerate(data):
        try:
            if not isinstance(value, str):
                raise forms.ValidationError("Expected text such as 10.0.0.0/24.")
            validators.validate_cidr(value)
            validators.validate_open_network(value)
            network = ipaddress.ip_network(value)
            for earlier in networks:
                other = ipaddress.ip_network(earlier)
                if network.version == other.version and network.overlaps(other):
                    raise forms.ValidationError(
                        f"{value} overlaps {earlier}, given before it; give each network once."
                    )
            networks.append(value)
        except forms.ValidationError as exc:
            errors[f"client_networks[{i}]"] = list(exc.messages)
    return networks


RESERVED_PORTS = {22, 5432, 5433, 7000, 8008, 2379, 2380}


def validate_http_frontends(data: object, errors: dict[str, list[str]]) -> list[dict]:
    """Optional HTTP frontends on the proxy: [{listen_port, app_port, check_path?}] sent to the
    primary. `check_path`, when given, is the application's own health path: HAProxy then sends
    a server traffic only while it is the primary and its application answers 2xx or 3xx."""
    if data in (None, ""):
        return []
    if not isinstance(data, list) or len(data) > 20:
        errors["http_frontends"] = [
            "Expected a list of at most 20 {listen_port, app_port, check_path}."
        ]
        return []
    result, seen = [], set()
    for i, item in enumerate(data):
        ports = [
            item.get(k) if isinstance(item, dict) else None for k in ("listen_port", "app_port")
        ]
        if not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports
        ):
            errors[f"http_frontends[{i}]"] = ["Both ports must be numbers from 1 to 65535."]
            continue
        if ports[0] in RESERVED_PORTS or ports[0] in seen:
            errors[f"http_frontends[{i}]"] = [f"Port {ports[0]} is taken on the proxy."]
            continue
        frontend = {"listen_port": ports[0], "app_port": ports[1]}
        path = item.get("check_path")
        if path not in (None, ""):
            try:
                if not isinstance(path, str):
                    raise forms.ValidationError("Expected text such as /health.")
                validators.validate_check_path(path)
            except forms.ValidationError as exc:
                errors[f"http_frontends[{i}].check_path"] = list(exc.messages)
                continue
            frontend["check_path"] = path
        seen.add(ports[0])
        result.append(frontend)
    return result


def validate_application_unit(data: object, errors: dict[str, list[str]]) -> str:
    """The optional systemd unit of the application that runs only where the primary is."""
    if data in (None, ""):
        return ""
    try:
        if not isinstance(data, str):
            raise forms.ValidationError("Expected text such as myapp.service.")
        validators.validate_application_unit(data)
    except forms.ValidationError as exc:
        errors["application_unit"] = list(exc.messages)
        return ""
    return data


def validate_topology(nodes: list[dict], errors: dict[str, list[str]]) -> None:
    """Across nodes: at least two database nodes, one proxy, one master at most and only a
    database node, unique names and addresses. Marks the first database node as master when
    none is."""
    kinds = [n["kind"] for n in nodes]
    if kinds.count(Node.Kind.DATABASE) < 2:
        errors.setdefault("nodes", []).append("A cluster needs at least two database nodes.")
    if kinds.count(Node.Kind.PROXY) != 1:
        errors.setdefault("nodes", []).append("A cluster needs exactly one proxy node.")
    if len(nodes) > settings.HACENTER_MAX_NODES:
        errors.setdefault("nodes", []).append(
            f"At most {settings.HACENTER_MAX_NODES} nodes per cluster."
        )
    masters = [i for i, n in enumerate(nodes) if n.get("master")]
    for i in masters:
        if nodes[i]["kind"] != Node.Kind.DATABASE:
            errors.setdefault(f"nodes[{i}].master", []).append(
                "Only a database node can be the master."
            )
    if len(masters) > 1:
        errors.setdefault("nodes", []).append("Mark one database node as master, not several.")
    if not masters:
        first_db = next((n for n in nodes if n["kind"] == Node.Kind.DATABASE), None)
        if first_db is not None:
            first_db["master"] = True
    seen_names: set[str] = set()
    seen_addresses: set[str] = set()
    for i, node in enumerate(nodes):
        if node["name"] in seen_names:
            errors.setdefault(f"nodes[{i}].name", []).append("Two nodes have this name.")
        # By address alone (addresses arrive normalised by NodeForm): two nodes on one server,
        # even with two SSH ports, would fight over PostgreSQL's, Patroni's and etcd's ports.
        address = node["address"]
        if address in seen_addresses:
            errors.setdefault(f"nodes[{i}].address", []).append(
                "Two nodes have this address: each node needs a server of its own "
                "(PostgreSQL, Patroni and etcd ports would collide)."
            )
        elif Node.objects.filter(address__iexact=address).exists():
            errors.setdefault(f"nodes[{i}].address", []).append(
                "This server already belongs to another cluster."
            )
        seen_names.add(node["name"])
        seen_addresses.add(address)


class ServerForm(NodeForm):
    """A server as the wizard's second step takes it: everything but the host key, which the
    third step scans and the admin confirms."""

    host_key_fingerprint = None
