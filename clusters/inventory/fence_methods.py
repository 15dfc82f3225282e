"""Fence methods: which agent of Debian's `fence-agents` package each one runs, the options it
takes, how they are checked, and the agent's input (issue 21 part 1).

An agent reads its options as ``key=value`` lines on stdin when it is started without
arguments (fencing.py's ``process_input``), so the secret never appears on a command line,
where ``ps`` on the witness would show it. The option names here are the agents' stdin names
(``fence_<agent> -o metadata``). Debian 12's single `fence-agents` package holds every agent;
`fence_ipmilan` also needs `ipmitool`, which the package does not depend on.
"""

import ipaddress
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from clusters.inventory import validators

# A plug, an instance, a VM or domain name, a region, a resource group: one token.
TOKEN_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}\Z")
UUID_RE = re.compile(
    r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
REDFISH_PATH_RE = re.compile(r"\A/redfish/v1(/[A-Za-z0-9._-]+)*/?\Z")
PRIVILEGE_LEVELS = ("callback", "user", "operator", "administrator")


@dataclass(frozen=True)
class Option:
    """One option of an agent: its stdin name, what kind of value, required, default."""

    name: str
    kind: str  # "address", "port", "user", "token", "uuid", "bool", "redfish_path", "privlvl"
    label: str
    required: bool = False
    default: object = None


@dataclass(frozen=True)
class Method:
    """A way to power a node off: the agent, its options, its secret and its packages."""

    name: str
    agent: str
    title: str
    options: tuple[Option, ...]
    credential_option: str = "password"  # the agent's stdin name for the secret ("" when none)
    credential_required: bool = True
    credential_label: str = "Password"
    packages: tuple[str, ...] = field(default=("fence-agents",))


ADDRESS = Option("ip", "address", "BMC address (IP or host name)", required=True)
USER = Option("username", "user", "User name", required=True)

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "redfish",
            "fence_redfish",
            "Redfish BMC (iDRAC, iLO 5+, XCC, OpenBMC)",
            (
                ADDRESS,
                Option("ipport", "port", "HTTPS port", default=443),
                USER,
                Option("systems_uri", "redfish_path", "System URI (e.g. /redfish/v1/Systems/1)"),
                Option("ssl_insecure", "bool", "Accept a self-signed certificate", default=False),
            ),
        ),
        Method(
            "ipmilan",
            "fence_ipmilan",
            "IPMI over LAN",
            (
                ADDRESS,
                Option("ipport", "port", "UDP port", default=623),
                USER,
                Option("lanplus", "bool", "IPMI 2.0 (lanplus)", default=True),
                Option("privlvl", "privlvl", "Privilege level", default="administrator"),
            ),
            packages=("fence-agents", "ipmitool"),
        ),
        Method(
            "virsh",
            "fence_virsh",
            "libvirt virtual machine (virsh over SSH to the hypervisor)",
            (
                Option("ip", "address", "Hypervisor address", required=True),
                Option("ipport", "port", "Hypervisor SSH port", default=22),
                Option("username", "user", "Hypervisor user", required=True),
                Option("plug", "token", "Domain (virtual machine) name", required=True),
            ),
            credential_label="Hypervisor SSH password",
            packages=("fence-agents", "openssh-client"),
        ),
        Method(
            "aws",
            "fence_aws",
            "AWS EC2 instance stop",
            (
                Option("region", "token", "Region (e.g. eu-west-1)", required=True),
                Option("plug", "token", "Instance id (i-...)", required=True),
                Option("access_key", "token", "Access key id (empty: the witness's role)"),
            ),
            credential_option="secret_key",
            credential_required=False,
            credential_label="Secret access key (empty: the witness's instance role)",
        ),
        Method(
            "azure",
            "fence_azure_arm",
            "Azure virtual machine power-off",
            (
                Option("subscriptionId", "uuid", "Subscription id", required=True),
                Option("resourceGroup", "token", "Resource group", required=True),
                Option("tenantId", "uuid", "Tenant id", required=True),
                Option("username", "uuid", "Application (client) id", required=True),
                Option("plug", "token", "VM name", required=True),
            ),
            credential_label="Client secret",
            packages=("fence-agents", "python3-azure"),
        ),
        Method(
            "gce",
            "fence_gce",
            "Google Compute Engine instance stop (the witness's service account)",
            (
                Option("project", "token", "Project", required=True),
                Option("zone", "token", "Zone", required=True),
                Option("plug", "token", "Instance name", required=True),
            ),
            credential_option="",
            credential_required=False,
            credential_label="",
        ),
    )
}


def _check_value(option: Option, value: object) -> object:
    """The option's value as stored, or ValidationError saying what is expected."""
    kind = option.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError("Expected true or false.")
        return value
    if kind == "port":
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise ValidationError("Expected a port number from 1 to 65535.")
        return value
    if not isinstance(value, str):
        raise ValidationError("Expected text.")
    value = value.strip()
    if kind == "address":
        validators.validate_address(value)
        try:
            if ipaddress.ip_address(value).is_loopback:
                # The agent runs on the witness: its own loopback is no BMC of another node.
                raise ValidationError("A loopback address is the witness itself, not a BMC.")
        except ValueError:
            pass
    elif kind == "user":
        if not value or len(value) > 64 or not TOKEN_RE.fullmatch(value.replace("@", "a")):
            raise ValidationError("A user name: letters, digits and . _ - @ (at most 64).")
    elif kind == "token":
        if not TOKEN_RE.fullmatch(value):
            raise ValidationError("Letters, digits and . _ : / - only, at most 200.")
    elif kind == "uuid":
        if not UUID_RE.fullmatch(value):
            raise ValidationError("A GUID like 00000000-0000-0000-0000-000000000000.")
    elif kind == "redfish_path":
        if not REDFISH_PATH_RE.fullmatch(value):
            raise ValidationError("A path under /redfish/v1, like /redfish/v1/Systems/1.")
    elif kind == "privlvl" and value not in PRIVILEGE_LEVELS:
        raise ValidationError(f"One of: {', '.join(PRIVILEGE_LEVELS)}.")
    return value


def clean_options(method_name: str, given: dict, *, old: dict | None = None) -> dict:
    """The method's options from ``given`` (a field left out keeps its ``old`` value, then its
    default), checked; ValidationError maps each wrong field to its messages. Unknown names
    are refused, so a typo is not silently dropped."""
    method = METHODS.get(method_name)
    if method is None:
        raise ValidationError({"method": [f"One of: {', '.join(METHODS)}."]})
    errors: dict[str, list[str]] = {}
    known = {o.name for o in method.options}
    for name in given:
        if name not in known:
            errors.setdefault(name, []).append(
                f"Not an option of {method.name}; it takes: {', '.join(sorted(known))}."
            )
    cleaned: dict = {}
    for option in method.options:
        value = given.get(option.name, (old or {}).get(option.name, option.default))
        if value is None or value == "":
            if option.required:
                errors.setdefault(option.name, []).append(f"{option.label}: required.")
            continue
        try:
            cleaned[option.name] = _check_value(option, value)
        except ValidationError as exc:
            errors.setdefault(option.name, []).extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    return cleaned


def clean_secret(method_name: str, secret: str) -> str:
    """The secret checked for the method: printable, one line; required where the agent
    needs one; refused where the method takes none."""
    method = METHODS[method_name]
    if not method.credential_option:
        if secret:
            raise ValidationError(f"{method.name} takes no secret: the witness's own account.")
        return ""
    validators.validate_secret_text(secret)
    return secret


def agent_input(method_name: str, options: dict, secret: str, action: str = "status") -> bytes:
    """The agent's stdin: ``action``, every option and the secret as ``key=value`` lines.
    Values were checked on the way in (no line breaks), but the check is repeated here: a
    line break would let a value add an option of its own."""
    method = METHODS[method_name]
    lines = [f"action={action}"]
    for option in method.options:
        if option.name not in options:
            continue
        value = options[option.name]
        if option.kind == "bool":
            # Some agents test a flag's presence, not its value (fence_redfish's
            # ``"--ssl-insecure" in options``): a false flag is left out, never sent as 0.
            if not value:
                continue
            value = "1"
        lines.append(f"{option.name}={value}")
    if method.credential_option and secret:
        lines.append(f"{method.credential_option}={secret}")
    for line in lines:
        if any(ord(c) < 32 or ord(c) == 127 for c in line):
            raise ValueError("a fence option holds a control character")
    return ("\n".join(lines) + "\n").encode()
