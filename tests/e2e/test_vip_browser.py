"""Issue 20's acceptance in Chromium against the lab: a cluster with two proxies and a floating
address (keepalived, VRRP), set up from the wizard; the application's writer on that address;
the proxy that holds it loses power; the first write through the address comes back within
seconds and, the cluster being synchronous, no acknowledged row is lost. The cluster page then
names the other proxy as the holder.

After it, what the two proxies must also do: the proxy that comes back does not take the address
back (no preemption), the holder whose HAProxy dies lets it go, and removing the cluster takes
keepalived and the address off both.

One test, one cluster (a setup costs a minute or two; transactional tests empty the database
between tests). It prints the figure the issue asks for: "first write through … after N s".
"""

import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Page, expect

from clusters.models import ApiToken, Cluster
from jobs import services
from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.e2e.pages import log_in
from tests.integration.conftest import wait_for_job, worker  # noqa: F401 - the fixture
from tests.lab.core import VIRTUAL_IP
from tests.lab.network import BRIDGE_ADDRESS
from tests.lab.probes import vip_holder
from tests.workers import start_beat
from tests.writer import ProxyWriter, query_rows

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.lab,
    pytest.mark.django_db(transaction=True),
    # Setup of four servers, the fault, a second setup and the removal take ~6 min; the lab
    # fixture may first wait for another session's lab (its lock wait counts here too).
    pytest.mark.timeout(2400),
]
SETUP_TIMEOUT_MS = 600_000
VIP = f"{VIRTUAL_IP}/24"
# The goal is 5 s; the assertion is a generous deadline (2 shared cores, other labs).
FIRST_WRITE_DEADLINE_S = 15


def holder(lab) -> str | None:
    return vip_holder(lab, VIRTUAL_IP)


def fill_servers(page: Page, lab) -> None:
    for i, host in enumerate(("node1", "node2", "proxy", "proxy2")):
        page.get_by_label(f"Address of server {i + 1}").fill(lab.host(host).address)


def confirm_and_preflight(page: Page, lab) -> None:
    """Step 3: compare and tick every fingerprint, then start preflight."""
    for host in ("node1", "node2", "proxy", "proxy2"):
        expect(page.get_by_text(lab.host_key_fingerprint(host))).to_be_visible()
        page.get_by_label(f"I checked the fingerprint of {host}", exact=True).check()
    page.get_by_role("button", name="Trust these keys and run preflight").click()


def run_wizard(page: Page, lab) -> None:
    """Steps 1-6 with two proxies, and the floating address's mistakes on the way: without a
    prefix length, taken by another cluster, outside the proxies' network, a server's own, and
    another host's on the network (preflight)."""
    page.get_by_role("link", name="New cluster").click()
    page.get_by_label("Cluster name").fill("vipc")
    page.locator('input[name="replication"][value="sync"]').check()
    page.get_by_label("Client networks").fill("198.18.0.0/24")
    vip_field = page.get_by_label("Floating address")
    expect(page.locator("#f-vip-help")).to_contain_text("keepalived (VRRP)")
    expect(page.locator("#f-vip-help")).to_contain_text("libpq string")

    vip_field.fill(VIRTUAL_IP)  # no prefix length: refused next to the field
    page.get_by_role("button", name="Next: servers").click()
    expect(page.locator("#f-vip-err")).to_contain_text("prefix length")
    expect(page.get_by_label("Floating address")).to_have_attribute("aria-invalid", "true")

    # In use: another cluster floats it already.
    taken = Cluster.objects.create(name="elsewhere", virtual_ip=VIP)
    page.get_by_label("Floating address").fill(VIP)
    page.get_by_role("button", name="Next: servers").click()
    expect(page.locator("#f-vip-err")).to_contain_text("Another cluster uses this floating address")
    taken.delete()

    page.get_by_label("Floating address").fill("10.9.9.100/24")  # not the proxies' network
    page.get_by_role("button", name="Next: servers").click()

    # The servers: the default three rows, then the second proxy's.
    expect(page.locator("#add-proxy-help")).to_contain_text("10.9.9.100/24")
    page.get_by_role("button", name="Add a second proxy").click()
    expect(page.get_by_label("Name of server 4")).to_have_value("proxy2")
    expect(page.get_by_label("Role of server 4")).to_have_value("proxy")
    expect(page.get_by_role("button", name="Add a second proxy")).to_have_count(0)
    expect(page.locator("#two-proxies")).to_contain_text("floating address")
    fill_servers(page, lab)
    page.get_by_label("Credential name").fill("lab-root")
    page.get_by_label("SSH user").fill("root")
    page.get_by_label("Private key (paste)").fill(lab.private_key_text)
    page.get_by_role("button", name="Save credential").click()
    expect(page.get_by_text("Credential lab-root saved")).to_be_visible()
    page.get_by_role("button", name="Next: scan host keys").click()
    expect(page.get_by_role("alert").filter(has_text="Floating address")).to_contain_text(
        "10.9.9.0/24 is not the proxies' network"
    )

    # A server's own address: in the network, but taken.
    page.get_by_role("link", name="1. Cluster").click()
    page.get_by_label("Floating address").fill(f"{lab.host('node1').address}/24")
    page.get_by_role("button", name="Next: servers").click()
    page.get_by_role("button", name="Next: scan host keys").click()
    expect(page.get_by_role("alert").filter(has_text="Floating address")).to_contain_text(
        "a node's own address"
    )

    # In use on the network: the console machine's own address on the lab's bridge passes
    # every check of the inventory, and preflight's knock from the first proxy finds it taken.
    page.get_by_role("link", name="1. Cluster").click()
    page.get_by_label("Floating address").fill(f"{BRIDGE_ADDRESS}/24")
    page.get_by_role("button", name="Next: servers").click()
    page.get_by_role("button", name="Next: scan host keys").click()
    confirm_and_preflight(page, lab)
    results = page.locator("#wizard-preflight")
    expect(results).to_have_attribute("data-verdict", "errors", timeout=180_000)
    taken = results.locator(".check-failed").filter(has_text="The floating address is free")
    expect(taken).to_contain_text(f"{BRIDGE_ADDRESS} answers on the network")

    page.get_by_role("link", name="1. Cluster").click()
    page.get_by_label("Floating address").fill(VIP)
    page.get_by_role("button", name="Next: servers").click()
    expect(page.get_by_label("Address of server 4")).to_have_value(lab.host("proxy2").address)
    page.get_by_role("button", name="Next: scan host keys").click()
    confirm_and_preflight(page, lab)
    expect(results).to_have_attribute(
        "data-verdict", re.compile("passed|warnings"), timeout=180_000
    )
    free = results.locator(".check").filter(has_text="The floating address is free")
    expect(free).to_contain_text(f"{VIRTUAL_IP} is free")
    if results.get_attribute("data-verdict") == "warnings":
        page.get_by_label("I read the warnings and want to go on").check()
    page.get_by_role("button", name="Next: application").click()
    expect(page.get_by_role("heading", name="The application")).to_be_visible()
    page.get_by_role("button", name="Next: review").click()

    expect(page.get_by_role("heading", name="Review and launch")).to_be_visible()
    expect(page.get_by_text(f"{VIP} (keepalived between the two proxies)")).to_be_visible()
    expect(page.get_by_text("synchronous (no data loss on failover)")).to_be_visible()
    page.get_by_role("button", name="Launch").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))


def reveal(page: Page) -> dict[str, str]:
    """The cluster page's connection strings, by their label."""
    page.locator("#connection-strings").get_by_role(
        "button", name="Reveal connection strings"
    ).click()
    dl = page.locator("#connection-strings dl.connection")
    expect(dl).to_be_visible()
    labels = dl.locator("dt").all_inner_texts()
    values = dl.locator("dd code").all_inner_texts()
    return dict(zip(labels, values, strict=True))


def with_ca(uri: str, ca_file: Path, **extra: str) -> str:
    """The handed-out URI with `sslrootcert` pointing at where this test saved the CA."""
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query))
    if "sslrootcert" in query:
        query["sslrootcert"] = str(ca_file)
    query.update(extra)
    return urlunsplit(parts._replace(query=urlencode(query)))


class watch_takeover(threading.Thread):
    """From `since` on, how long until `name` carries the floating address (``seconds``),
    polled on the host beside the writer."""

    def __init__(self, lab, name: str, since: float) -> None:
        super().__init__(daemon=True, name="takeover-watch")
        self.lab, self.host, self.since = lab, name, since
        self.seconds = float("nan")
        self.start()

    def run(self) -> None:
        while time.monotonic() - self.since < 30:
            shown = self.lab.exec(self.host, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
            if VIRTUAL_IP in shown:
                self.seconds = time.monotonic() - self.since
                return
            time.sleep(0.05)


def test_two_proxies_from_the_wizard_and_a_power_off_of_the_vip_holder_under_a_writer(
    page: Page,
    live_server,
    django_user_model,
    fresh_lab,
    worker,  # noqa: F811
):
    page.set_viewport_size({"width": 1280, "height": 800})
    fresh_lab.add_second_proxy()
    problems = log_in(page, live_server, django_user_model)
    run_wizard(page, fresh_lab)

    # The setup job: live log, then the summary.
    expect(page.locator("#log .line").first).to_be_visible(timeout=60_000)
    expect(page.locator("[data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=SETUP_TIMEOUT_MS
    )
    expect(page.locator("#setup-summary")).to_contain_text("vipc is set up")
    cluster = Cluster.objects.get(name="vipc")
    assert [p.name for p in cluster.proxy_nodes] == ["proxy", "proxy2"]
    assert cluster.virtual_ip == VIP
    first = wait_for(lambda: holder(fresh_lab), 20, "one proxy to hold the floating address")
    other = "proxy2" if first == "proxy" else "proxy"

    beat = start_beat()  # the monitor, which finds out who holds the address
    try:
        wait_for(
            lambda: Cluster.objects.get(pk=cluster.pk).vip_holder == first,
            60,
            f"the monitor to see {first} answer on the floating address",
        )
        cluster_url = f"{live_server.url}/clusters/{cluster.pk}/"
        page.goto(cluster_url)
        expect(page.locator(".state-healthy").first).to_contain_text("Healthy", timeout=60_000)
        expect(page.locator("p.vip")).to_contain_text(f"{VIRTUAL_IP}: held by {first}")
        expect(page.get_by_text("etcd witness (third member): proxy")).to_be_visible()

        # The connection strings: the application's on the floating address, and the libpq
        # alternative naming both proxies for networks without VRRP.
        strings = reveal(page)
        read_write = next(v for k, v in strings.items() if k.startswith("Read-write"))
        assert f"@{VIRTUAL_IP}:5432/app" in read_write, strings
        assert f"@{VIRTUAL_IP}:5433/app" in next(
            v for k, v in strings.items() if k.startswith("Read-only")
        )
        both = next(v for k, v in strings.items() if k.startswith("Both proxies"))
        proxies = f"{fresh_lab.host('proxy').address}:5432,{fresh_lab.host('proxy2').address}:5432"
        assert f"@{proxies}/app?target_session_attrs=read-write" in both, both
        admin = django_user_model.objects.get(username="admin")
        auth = {"Authorization": f"Token {ApiToken.issue(admin)}"}
        api = page.request.get(
            f"{live_server.url}/api/v1/clusters/{cluster.pk}/connection/", headers=auth
        ).json()
        assert api["read_write"] == read_write and api["proxies_multi_host"] == both, api

        ca_file = Path(tempfile.mkdtemp()) / "ca.crt"
        ca_file.write_text(cluster.ca_certificate)
        application = with_ca(read_write, ca_file)
        writer = ProxyWriter(application)
        writer.start()
        try:
            wait_for(lambda: len(writer.acks) >= 20, 30, "the writer to get going")
            # A power-off: the host's cable goes dead with it (a netns keeps its addresses after
            # its processes die, and would go on answering ARP for the floating address).
            fault = time.monotonic()
            fresh_lab.cut_network(first)
            fresh_lab.power_off(first)
            taken_over = watch_takeover(fresh_lab, other, fault)

            # An acknowledgement can still land just after the fault's start (its answer was
            # on its way): writes resume with the first one after the writer's first failure.
            def first_write_after_the_break():
                broke = next((at for at, _ in writer.errors if at > fault), None)
                return broke and next((a for a in writer.acks if a.at > broke), None)

            try:
                resumed = wait_for(
                    first_write_after_the_break,
                    30,
                    "a write through the floating address after the power-off",
                )
            except BaseException:  # pytest.fail's outcome: say what the hosts show first
                print(diagnosis(fresh_lab, other, writer))
                raise
            seconds = resumed.at - fault
            taken_over.join(10)
            broke = next((at - fault, e) for at, e in writer.errors if at > fault)
            print(
                f"power-off of {first}: first write through {VIRTUAL_IP} after {seconds:.2f} s "
                f"(address on {other} after {taken_over.seconds:.2f} s; the writer's "
                f"connection broke after {broke[0]:.2f} s: {broke[1]!r})"
            )
            assert seconds < FIRST_WRITE_DEADLINE_S
            wait_for(lambda: holder(fresh_lab) == other, 5, f"{other} to hold the address")

            # The page follows: the other proxy holds it, and the dead one is said (the
            # address has nowhere to go if the survivor fails too).
            wait_for(
                lambda: Cluster.objects.get(pk=cluster.pk).vip_holder == other,
                60,
                f"the monitor to see {other} answer on the floating address",
            )
            page.goto(cluster_url)
            expect(page.locator("p.vip")).to_contain_text(f"{VIRTUAL_IP}: held by {other}")
            expect(page.locator("section.why")).to_contain_text(
                f"{first}'s HAProxy does not answer", timeout=60_000
            )
            detail = page.request.get(
                f"{live_server.url}/api/v1/clusters/{cluster.pk}/", headers=auth
            ).json()
            assert detail["virtual_ip"]["holder"] == other, detail.get("virtual_ip")

            # Without the floating address, libpq's string naming both proxies finds the
            # survivor too (it tries the dead one first, gives up after connect_timeout).
            assert query_rows(with_ca(both, ca_file, connect_timeout="3"), "SELECT 1") == [(1,)]
            wait_for(lambda: len([a for a in writer.acks if a.at > fault]) >= 20, 20, "writes")
        finally:
            writer.stop()
            fresh_lab.restore_network(first)
            fresh_lab.power_on(first)
    finally:
        beat.stop()

    # No acknowledged write lost (synchronous replication): every id the writer was told
    # committed is there.
    acked = {a.id for a in writer.acks}
    rows = writer.stored_ids()
    print(
        f"{len(acked)} writes acknowledged, {len(acked - rows)} lost, {len(writer.errors)} errors"
    )
    assert acked <= rows

    # The proxy is back (setup starts its daemons again: the lab has no systemd to do it), and
    # the address stays where it is: no preemption, no second move.
    rerun = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    assert rerun.status == JobStatus.SUCCEEDED, rerun.error
    summaries = {
        (s.node.name if s.node else "cluster", s.name): s.summary
        for s in rerun.steps.select_related("node")
    }
    print(f"setup again: {first}: {summaries[(first, 'keepalived')]}")
    print(f"setup again: {other}: {summaries[(other, 'keepalived')]}")
    assert "keepalived started" in summaries[(first, "keepalived")]
    assert "already configured and running" in summaries[(other, "keepalived")]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # a window, not a wait: it must hold all along
        assert holder(fresh_lab) == other
        time.sleep(0.5)

    # HAProxy dies on the holder, the host stays up: keepalived's check lets the address go.
    stopped = time.monotonic()
    fresh_lab.exec(other, ["pkill", "-KILL", "-x", "haproxy"])
    wait_for(lambda: holder(fresh_lab) == first, 15, f"{first} to take the address back")
    moved = time.monotonic() - stopped
    print(f"HAProxy killed on {other}: the address on {first} after {moved:.2f} s")
    assert query_rows(with_ca(read_write, ca_file), "SELECT 1") == [(1,)]

    removal = services.job_start(cluster=cluster, kind="remove_cluster", params={"confirm": "vipc"})
    removal = wait_for_job(removal, timeout=300)
    assert removal.status == JobStatus.SUCCEEDED, removal.error
    for name in ("proxy", "proxy2"):
        assert fresh_lab.exec(name, ["pgrep", "-x", "keepalived"], check=False).returncode == 1
        addresses = fresh_lab.exec(name, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
        assert VIRTUAL_IP not in addresses, (name, addresses)
    assert problems == []


def diagnosis(lab, survivor: str, writer: ProxyWriter) -> str:
    """What the surviving proxy and this machine show, for a failure's report."""
    commands = [
        ["ip", "-o", "addr", "show", "dev", "eth0"],
        ["tail", "-n", "30", "/var/log/hacenter/keepalived.log"],
        ["ss", "-ltn"],
        ["nft", "list", "ruleset"],
    ]
    parts = [
        f"{survivor}$ {' '.join(c)}\n{lab.exec(survivor, c, check=False).stdout}" for c in commands
    ]
    neigh = subprocess.run(["ip", "neigh", "show", VIRTUAL_IP], capture_output=True, text=True)
    parts.append(f"console$ ip neigh show {VIRTUAL_IP}\n{neigh.stdout}")
    conns = subprocess.run(["ss", "-tnoi", "dst", VIRTUAL_IP], capture_output=True, text=True)
    parts.append(f"console$ ss -tnoi dst {VIRTUAL_IP}\n{conns.stdout}")
    parts.append(f"writer errors (last 5): {writer.errors[-5:]}")
    return "\n".join(parts)
