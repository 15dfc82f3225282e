"""The lab BMC's broken modes (tests/lab/bmc.py), which the chaos suite's "fence broken" rounds
use: a device that cannot confirm an off must still answer status queries."""

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest

from tests.lab.bmc import LabBMC


@dataclass
class Host:
    name: str


@dataclass
class FakeLab:
    """What the BMC asks of a lab: its hosts, their power and cables."""

    hosts: list[Host] = field(default_factory=lambda: [Host("node1")])
    off: set[str] = field(default_factory=set)
    cut: set[str] = field(default_factory=set)

    def is_powered(self, name: str) -> bool:
        return name not in self.off

    def power_off(self, name: str) -> None:
        self.off.add(name)

    def power_on(self, name: str) -> None:
        self.off.discard(name)

    def network_is_cut(self, name: str) -> bool:
        return name in self.cut

    def cut_network(self, name: str) -> None:
        self.cut.add(name)

    def restore_network(self, name: str) -> None:
        self.cut.discard(name)


@pytest.fixture
def served():
    lab = FakeLab()
    with LabBMC(lab, "127.0.0.1", port=0, password="pw") as bmc:
        yield lab, bmc, bmc._server.server_address[1]


def ask(port: int, path: str, body: dict | None = None) -> tuple[int, dict]:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as answer:  # noqa: S310
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


SYSTEM = "/redfish/v1/Systems/node1"
RESET = SYSTEM + "/Actions/ComputerSystem.Reset"


def test_a_working_bmc_powers_off_and_says_so(served):
    lab, _bmc, port = served
    assert ask(port, RESET, {"ResetType": "ForceOff"})[0] == 204
    assert (lab.off, lab.cut) == ({"node1"}, {"node1"})
    assert ask(port, SYSTEM)[1]["PowerState"] == "Off"


def test_a_refusing_bmc_answers_500_and_does_nothing(served):
    lab, bmc, port = served
    bmc.break_as("refuse")
    status, body = ask(port, RESET, {"ResetType": "ForceOff"})
    assert status == 500 and "did not respond" in body["error"]["message"]
    assert (lab.off, lab.cut) == (set(), set())
    assert ask(port, SYSTEM)[1]["PowerState"] == "On"  # status queries still work


def test_a_stuck_bmc_accepts_the_reset_and_goes_on_saying_on(served):
    lab, bmc, port = served
    bmc.break_as("stuck_on")
    assert ask(port, RESET, {"ResetType": "ForceOff"})[0] == 204
    assert lab.off == set()
    lab.power_off("node1")  # even a host that is off is "On" to it
    assert ask(port, SYSTEM)[1]["PowerState"] == "On"
    bmc.break_as("")
    assert ask(port, SYSTEM)[1]["PowerState"] == "Off"


def test_an_unknown_broken_mode_is_refused(served):
    with pytest.raises(ValueError, match="unknown broken mode"):
        served[1].break_as("melted")


def test_a_silent_bmc_answers_503_to_everything(served):
    lab, bmc, port = served
    bmc.break_as("silent")
    assert ask(port, SYSTEM)[0] == 503
    assert ask(port, RESET, {"ResetType": "ForceOff"})[0] == 503
    assert lab.off == set()
