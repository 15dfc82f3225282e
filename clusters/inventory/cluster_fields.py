"""Checks of a cluster's structured settings (the application database, client networks, HTTP
frontends, the application unit), shared by the forms, the API, the wizard and the models'
``clean()`` (so the Django admin cannot save what the pages refuse).

Each takes the raw value and a dict of field errors to fill, and returns the cleaned value.
"""

import ipaddress

from django.core.exceptions import ValidationError

from clusters.inventory import validators

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
                raise ValidationError("This field is required.")
            validators.validate_sql_identifier(value)
            reserved = RESERVED_DATABASE_ROLES if key == "user" else RESERVED_DATABASES
            if value in reserved:
                raise ValidationError(
                    f"{value} is a name PostgreSQL or HA Center uses itself; choose another."
                )
            result[key] = value
        except ValidationError as exc:
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
                raise ValidationError("Expected text such as 10.0.0.0/24.")
            validators.validate_cidr(value)
            validators.validate_open_network(value)
            network = ipaddress.ip_network(value)
            for earlier in networks:
                other = ipaddress.ip_network(earlier)
                if network.version == other.version and network.overlaps(other):
                    raise ValidationError(
                        f"{value} overlaps {earlier}, given before it; give each network once."
                    )
            networks.append(value)
        except ValidationError as exc:
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
                    raise ValidationError("Expected text such as /health.")
                validators.validate_check_path(path)
            except ValidationError as exc:
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
            raise ValidationError("Expected text such as myapp.service.")
        validators.validate_application_unit(data)
    except ValidationError as exc:
        errors["application_unit"] = list(exc.messages)
        return ""
    return data
