"""What the console's answers mean as exit codes, and what is never done with the token."""

import socket
import threading

from hacenter_cli.main import main
from tests.unit.cli.fake_console import TOKEN


def test_a_server_error_exits_5_with_its_status(console, capsys):
    console.on("GET", "/clusters/", (500, b"<h1>Server Error</h1>"))
    assert main(["clusters"], console.env()) == 5
    assert "the console answered 500" in capsys.readouterr().err


def test_a_console_that_does_not_answer_exits_5(capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"HACENTER_URL": f"http://127.0.0.1:{port}", "HACENTER_TOKEN": TOKEN}
    assert main(["clusters"], env) == 5
    err = capsys.readouterr().err
    assert f"cannot reach the console at http://127.0.0.1:{port}" in err
    assert TOKEN not in err


def test_a_bad_token_is_refused_with_exit_4_and_the_apis_message(console, capsys):
    console.on("GET", "/clusters/", (401, {"error": "This token was revoked.", "field_errors": {}}))
    assert main(["clusters"], console.env()) == 4
    assert capsys.readouterr().err == "hacenter: This token was revoked.\n"


def test_a_redirect_is_not_followed_so_the_token_stays_home(console, capsys):
    console.on(
        "GET", "/clusters/", (301, b"", {"Location": "http://198.51.100.1/api/v1/clusters/"})
    )
    assert main(["clusters"], console.env()) == 5
    err = capsys.readouterr().err
    assert "redirects GET /clusters/ to http://198.51.100.1/api/v1/clusters/" in err
    assert len(console.seen) == 1


def test_an_answer_that_is_not_json_exits_5(console, capsys):
    console.on("GET", "/clusters/", (200, b"<html>a login page</html>"))
    assert main(["clusters"], console.env()) == 5
    assert "not JSON" in capsys.readouterr().err


def test_the_api_address_as_curl_uses_it_is_accepted(console, capsys):
    console.on("GET", "/clusters/", (200, []))
    assert main(["clusters"], console.env(HACENTER_URL=f"{console.url}/api/v1/")) == 0
    assert console.seen[0].path == "/api/v1/clusters/"


def test_a_connection_closed_without_an_answer_exits_5(capsys):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def hang_up() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        env = {"HACENTER_URL": f"http://127.0.0.1:{port}", "HACENTER_TOKEN": TOKEN}
        assert main(["clusters"], env) == 5
        thread.join(5)
    assert "cannot reach the console" in capsys.readouterr().err
