"""Fence device options and secrets (issue 21 part 1): checked per method, and handed to the
agent on stdin only."""

import pytest
from django.core.exceptions import ValidationError

from clusters.inventory.fence_methods import METHODS, agent_input, clean_options, clean_secret

REDFISH = {"ip": "198.18.0.1", "ipport": 8443, "username": "admin", "ssl_insecure": True}


def errors_of(method: str, given: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        clean_options(method, given)
    return caught.value.message_dict


def test_a_redfish_device_keeps_its_options_and_defaults():
    options = clean_options("redfish", {"ip": "bmc1.example.com", "username": "root"})
    assert options == {
        "ip": "bmc1.example.com",
        "ipport": 443,
        "username": "root",
        "ssl_insecure": False,
    }


def test_every_method_names_an_agent_debian_12_ships():
    agents = {m.agent for m in METHODS.values()}
    assert agents == {
        "fence_redfish",
        "fence_ipmilan",
        "fence_virsh",
        "fence_aws",
        "fence_azure_arm",
        "fence_gce",
    }
    assert "ipmitool" in METHODS["ipmilan"].packages  # fence-agents does not depend on it


@pytest.mark.parametrize(
    ("method", "given", "field"),
    [
        ("redfish", {"username": "admin"}, "ip"),  # required
        ("redfish", {"ip": "198.18.0.1"}, "username"),
        ("redfish", {**REDFISH, "ip": "bmc;reboot"}, "ip"),
        ("redfish", {**REDFISH, "ip": "127.0.0.1"}, "ip"),  # the witness itself
        ("redfish", {**REDFISH, "ipport": 70000}, "ipport"),
        ("redfish", {**REDFISH, "ipport": True}, "ipport"),
        ("redfish", {**REDFISH, "ssl_insecure": "yes"}, "ssl_insecure"),
        ("redfish", {**REDFISH, "systems_uri": "/etc/passwd"}, "systems_uri"),
        ("redfish", {**REDFISH, "username": "admin\naction=off"}, "username"),
        ("redfish", {**REDFISH, "plug": "x"}, "plug"),  # not an option of redfish
        ("ipmilan", {**REDFISH, "privlvl": "root"}, "privlvl"),
        ("aws", {"region": "eu-west-1", "plug": "i-1\naction=off"}, "plug"),
        ("azure", {"subscriptionId": "nope"}, "subscriptionId"),
        ("gce", {"project": "p", "zone": "z"}, "plug"),
    ],
)
def test_a_wrong_option_is_refused_by_name(method, given, field):
    given = {k: v for k, v in given.items() if not (method == "ipmilan" and k == "ssl_insecure")}
    assert field in errors_of(method, given)


def test_an_unknown_method_is_refused():
    assert "method" in errors_of("stonith", {})


def test_a_secret_is_one_printable_line():
    assert clean_secret("redfish", "p@ss word;'\"=") == "p@ss word;'\"="
    with pytest.raises(ValidationError):
        clean_secret("redfish", "pass\naction=off")
    with pytest.raises(ValidationError):
        clean_secret("gce", "anything")  # gce uses the witness's own service account


def test_the_agent_reads_options_and_secret_on_stdin():
    options = clean_options("redfish", {**REDFISH, "systems_uri": "/redfish/v1/Systems/node2"})
    data = agent_input("redfish", options, "s3cret=x y", action="status").decode()
    assert data.splitlines() == [
        "action=status",
        "ip=198.18.0.1",
        "ipport=8443",
        "username=admin",
        "systems_uri=/redfish/v1/Systems/node2",
        "ssl_insecure=1",
        "password=s3cret=x y",
    ]


def test_a_false_flag_is_left_out_not_sent_as_zero():
    # fence_redfish tests "--ssl-insecure" in options: "ssl_insecure=0" would turn it on.
    options = clean_options("redfish", {**REDFISH, "ssl_insecure": False})
    assert "ssl_insecure" not in agent_input("redfish", options, "pw").decode()


def test_aws_sends_its_secret_key_under_the_agents_name():
    options = clean_options("aws", {"region": "eu-west-1", "plug": "i-0abc", "access_key": "AKIA1"})
    assert "secret_key=abc" in agent_input("aws", options, "abc").decode().splitlines()


def test_a_line_break_that_slipped_in_never_reaches_the_agent():
    with pytest.raises(ValueError):
        agent_input("redfish", {"ip": "198.18.0.1\naction=off"}, "pw")
