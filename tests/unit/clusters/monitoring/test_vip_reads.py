"""The monitor reads HAProxy through the floating address and learns who answered."""

from unittest import mock

from clusters.monitoring import reads

CSV = b"# pxname,svname,status\nprimary,node1,UP\nprimary,node2,DOWN\nprimary,BACKEND,UP\n"


def test_the_stats_through_the_floating_address_name_the_proxy_that_answered() -> None:
    def fake_get(address, port, path, timeout, headers=None, context=None, answer_headers=None):
        assert (address, port, path) == ("198.18.0.100", 7000, "/;csv")
        answer_headers["x-hacenter-node"] = "proxy2"
        return CSV

    with mock.patch.object(reads, "_http_get", fake_get):
        backends, holder = reads.read_proxy_at("198.18.0.100", "pw", 1.0)
    assert backends == {"primary": {"node1": "UP", "node2": "DOWN"}}
    assert holder == "proxy2"


def test_no_answer_is_no_holder() -> None:
    with mock.patch.object(reads, "_http_get", return_value=None):
        assert reads.read_proxy_at("198.18.0.100", "pw", 1.0) == (None, None)


def test_one_proxy_is_read_at_its_address_without_a_holder() -> None:
    proxy = mock.Mock(address="198.18.0.10")
    with mock.patch.object(reads, "_http_get", return_value=CSV) as get:
        backends, holder = reads._read_proxy_entry(proxy, "", "pw", 1.0)
    assert get.call_args.args[0] == "198.18.0.10"
    assert backends["primary"]["node1"] == "UP" and holder is None
