"""The fence device page (issue 21 part 1): admins define it, operators test it, the secret is
written and never shown."""

import pytest

from clusters.models import AuditEntry, FenceDevice
from jobs.models import Job
from tests.conftest import make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db
SECRET = "page-bmc-secret-8812"


@pytest.fixture
def pg():
    return three_node_cluster()[0]


def page(cluster, node="node2"):
    return f"/clusters/{cluster.pk}/nodes/{node}/fence/"


def save(client, cluster, **fields):
    data = {
        "action": "save",
        "method": "redfish",
        "opt-ip": "198.18.0.1",
        "opt-ipport": "8443",
        "opt-username": "admin",
        "opt-ssl_insecure": "1",
        "secret": SECRET,
        **fields,
    }
    return client.post(page(cluster), data)


def test_an_admin_defines_the_device_and_the_page_never_shows_the_secret(
    client, django_user_model, pg
):
    client.force_login(make_user(django_user_model, "ada", "admin"))
    assert "No fence device" in client.get(page(pg)).content.decode()
    response = save(client, pg)
    assert response.status_code == 302
    device = FenceDevice.objects.get(node__name="node2")
    assert device.options["ipport"] == 8443 and device.options["ssl_insecure"] is True
    assert device.secret == SECRET
    shown = client.get(page(pg)).content.decode()
    assert "fence_redfish" in shown and "secret set" in shown and SECRET not in shown
    assert (
        "Fence device</a>: redfish, not tested"
        in client.get(f"/clusters/{pg.pk}/").content.decode()
    )
    # Saving again without a secret keeps it.
    save(client, pg, secret="", **{"opt-ipport": "443"})
    device.refresh_from_db()
    assert device.secret == SECRET and device.options["ipport"] == 443
    assert AuditEntry.objects.filter(action="fence_device.set", result="ok").count() == 2


def test_a_wrong_option_is_shown_by_its_field_and_nothing_is_saved(client, django_user_model, pg):
    client.force_login(make_user(django_user_model, "ada", "admin"))
    response = save(client, pg, **{"opt-ip": "bmc;reboot"})
    assert response.status_code == 200 and "field-error" in response.content.decode()
    assert not FenceDevice.objects.exists()


def test_an_operator_tests_but_cannot_change(client, django_user_model, pg):
    client.force_login(make_user(django_user_model, "ada", "admin"))
    save(client, pg)
    client.force_login(make_user(django_user_model, "olga", "operator"))
    assert save(client, pg, **{"opt-ipport": "1"}).status_code == 403
    assert FenceDevice.objects.get().options["ipport"] == 8443
    response = client.post(page(pg), {"action": "test"})
    job = Job.objects.get(kind="fence_test")
    assert response.status_code == 302 and response["Location"].endswith(f"/jobs/{job.pk}/")
    assert job.node.name == "node2"
