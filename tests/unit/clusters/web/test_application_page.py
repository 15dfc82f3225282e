import pytest

from clusters.models import Cluster, Credential, Node, NodeStatus

pytestmark = pytest.mark.django_db


def test_cluster_page_and_api_show_where_the_frontend_routes(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", password="boss-password-123")
    cred = Credential.objects.create(name="lab", username="root", password="pw-123456")
    cluster = Cluster.objects.create(
        name="pg1",
        state="healthy",
        application_unit="myapp.service",
        http_frontends=[{"listen_port": 80, "app_port": 8080, "check_path": "/health"}],
    )
    for i, (name, kind) in enumerate(
        [("node1", "database"), ("node2", "database"), ("proxy", "proxy")]
    ):
        Node.objects.create(
            cluster=cluster, name=name, address=f"10.0.0.{i + 1}", kind=kind, credential=cred
        )
    NodeStatus.objects.create(
        node=cluster.nodes.get(name="node1"),
        role="primary",
        proxy_backends={"primary": "UP", "app_80": "UP"},
    )
    NodeStatus.objects.create(
        node=cluster.nodes.get(name="node2"),
        role="replica",
        proxy_backends={"primary": "DOWN", "app_80": "DOWN"},
    )
    client.force_login(admin)
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "<code>:80</code> application → <strong>node1</strong>:8080" in html, html
    assert "runs on <strong>node1</strong>" in html
    from clusters.web.selectors import cluster_detail

    app = cluster_detail(cluster)["application"]
    assert app["frontends"][0]["routes_to"] == ["node1"] and app["unit_on"] == "node1", app
