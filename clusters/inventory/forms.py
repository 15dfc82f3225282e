"""Forms that validate what admins type, used by the pages and the API alike."""

from django import forms
from django.conf import settings

from clusters.inventory import ssh_keys, validators
from clusters.inventory.cluster_fields import (
    RESERVED_DATABASE_ROLES,
    RESERVED_DATABASES,
    RESERVED_PORTS,
    validate_application_unit,
    validate_client_networks,
    validate_database,
    validate_http_frontends,
)
from clusters.models import Cluster, Credential, Node

# The cluster's structured fields are checked in cluster_fields (the models' clean() uses them
# too); they are named here as well, where the pages, the wizard and the API look for them.
__all__ = [
    "RESERVED_DATABASES",
    "RESERVED_DATABASE_ROLES",
    "RESERVED_PORTS",
    "ClusterForm",
    "CredentialForm",
    "NodeForm",
    "ServerForm",
    "validate_application_unit",
    "validate_client_networks",
    "validate_database",
    "validate_http_frontends",
    "validate_topology",
]

MAX_KEY_BYTES = 16 * 1024  # an RSA-8192 key in PEM is about 6.5 KB


class LineField(forms.CharField):
    """A one-line value. Spaces around it are trimmed (a slip of the keyboard), but a line
    break, tab or other control character is refused, never silently dropped: "app\\n" from
    the API is not "app" (issue 17: such values used to slip past ^...$ validators)."""

    def to_python(self, value: object) -> str:
        if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise forms.ValidationError(
                "Line breaks, tabs and other control characters are not allowed here."
            )
        return super().to_python(value)


class CredentialForm(forms.Form):
    """An SSH login: user and either a private key (optionally with passphrase) or a password."""

    name = LineField(max_length=100, validators=[validators.validate_label])
    username = LineField(max_length=32, validators=[validators.validate_unix_user])
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

    name = LineField(max_length=63, validators=[validators.validate_name])
    replication = forms.ChoiceField(choices=Cluster.Replication.choices, initial="async")
    failover_profile = forms.ChoiceField(
        choices=Cluster.FailoverProfile.choices, initial="balanced", required=False
    )
    postgres_version = forms.IntegerField(min_value=13, max_value=17, initial=15, required=False)
    sync_strict = forms.BooleanField(required=False)
    apt_proxy = LineField(
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

    name = LineField(max_length=63, validators=[validators.validate_name])
    address = LineField(max_length=253, validators=[validators.validate_server_address])
    ssh_port = forms.IntegerField(min_value=1, max_value=65535, initial=22, required=False)
    credential = forms.ModelChoiceField(
        queryset=Credential.objects.all(),
        error_messages={"invalid_choice": "No such credential; create it first."},
    )
    host_key_fingerprint = LineField(validators=[validators.validate_fingerprint])
    kind = forms.ChoiceField(choices=Node.Kind.choices)
    master = forms.BooleanField(required=False)  # bootstrap this database node as the primary

    def clean_address(self) -> str:
        return validators.normalize_address(self.cleaned_data["address"])


def validate_topology(nodes: list[dict], errors: dict[str, list[str]]) -> None:
    """Across nodes: at least two database nodes, one proxy (or two), one master at most and only a
    database node, unique names and addresses. Marks the first database node as master when
    none is."""
    kinds = [n["kind"] for n in nodes]
    if kinds.count(Node.Kind.DATABASE) < 2:
        errors.setdefault("nodes", []).append("A cluster needs at least two database nodes.")
    if kinds.count(Node.Kind.PROXY) not in (1, 2):
        errors.setdefault("nodes", []).append(
            "A cluster needs one proxy node, or two (clients use a floating address or both)."
        )
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
