"""serve and send_sample: the local run's safe defaults and the shipped sample sender."""

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stardex_webhook import serve
from stardex_webhook.send_sample import SAMPLES_DIR, local_signing_key, main as send_sample
from stardex_webhook.serve import local_environment
from stardex_webhook.sources import SOURCES


def test_no_stardex_key_means_dry_run_and_demo_signing_keys():
    env, notes = local_environment({})
    assert env["DRY_RUN"] == "1"
    for source in SOURCES:
        assert env[f"{source.upper().replace('-', '_')}_SIGNING_KEY"] == local_signing_key(source)
    assert any("DRY_RUN" in note for note in notes)


def test_settings_the_user_gave_are_kept():
    given = {"STARDEX_API_KEY": "k", "GREENHOUSE_SIGNING_KEY_SECRET": "projects/p/secrets/s/versions/1"}
    env, _ = local_environment(given)
    assert "DRY_RUN" not in env, "with a key, the local run calls Stardex"
    assert "GREENHOUSE_SIGNING_KEY" not in env, "a key in Secret Manager is not shadowed by a demo key"
    assert env["TYPEFORM_SIGNING_KEY"] == local_signing_key("typeform")


def test_every_source_ships_a_sample_that_is_json():
    for source in SOURCES:
        assert isinstance(json.loads((SAMPLES_DIR / f"{source}.json").read_text()), dict)


@pytest.fixture
def receiver():
    """A loopback server answering every POST 200 ``{"status": "dry_run"}``: its base URL, and each
    request it took as (path, body, headers)."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
            body = b'{"status": "dry_run"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def test_send_sample_posts_the_sample_to_the_source_path(receiver, capsys):
    url, received = receiver
    code = send_sample(["typeform", "--url", url, "--key", "k"])
    assert code == 0
    path, body, headers = received[0]
    assert path == "/typeform"
    assert body == (SAMPLES_DIR / "typeform.json").read_bytes()
    assert headers["Typeform-Signature"].startswith("sha256=")
    assert "HTTP 200" in capsys.readouterr().out


def test_send_sample_signs_with_the_first_key_of_a_rotation(receiver, monkeypatch):
    """``<SOURCE>_SIGNING_KEY`` may list several keys while they are rotated (the function accepts
    each): the sample is signed with the first, as with that key alone."""
    url, received = receiver
    monkeypatch.setenv("TYPEFORM_SIGNING_KEY", "  new-key old-key ")
    assert send_sample(["typeform", "--url", url]) == 0
    monkeypatch.setenv("TYPEFORM_SIGNING_KEY", "new-key")
    assert send_sample(["typeform", "--url", url]) == 0
    (_, rotated_body, rotated), (_, alone_body, alone) = received
    assert rotated_body == alone_body
    assert rotated["Typeform-Signature"] == alone["Typeform-Signature"]


@pytest.mark.parametrize(
    "argv, port_variable, address", [([], None, "127.0.0.1:8080"), ([], "9001", "127.0.0.1:9001"),
                                     (["--host", "0.0.0.0", "--port", "7000"], "9001", "0.0.0.0:7000")]
)
def test_serve_listens_where_it_says_on_loopback_by_default(base_env, monkeypatch, capsys, argv, port_variable, address):
    if port_variable:
        monkeypatch.setenv("PORT", port_variable)
    else:
        monkeypatch.delenv("PORT", raising=False)
    started = []
    monkeypatch.setattr(os, "execvpe", lambda file, command, env: started.append(command))
    monkeypatch.setattr(serve, "port_taken", lambda host, port: None)  # these ports are only named, never bound
    serve.main(argv)
    host, port = address.split(":")
    assert f"--host={host}" in started[0] and f"--port={port}" in started[0]
    assert f"http://{address}/<source>" in capsys.readouterr().err


def test_serve_on_port_0_names_the_free_port_it_starts_the_server_on(base_env, monkeypatch, capsys):
    """``--port 0`` (any free port): the URL printed is the one the server listens on, not ``:0``."""
    started = []
    monkeypatch.setattr(os, "execvpe", lambda file, command, env: started.append(command))
    serve.main(["--port", "0"])
    (port,) = [int(word.split("=", 1)[1]) for word in started[0] if word.startswith("--port=")]
    assert port > 0 and serve.port_taken("127.0.0.1", port) is None
    assert f"http://127.0.0.1:{port}/<source>" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_serve_names_a_port_in_use_and_its_process_and_starts_nothing(base_env, monkeypatch, capsys, host):
    started = []
    monkeypatch.setattr(os, "execvpe", lambda file, command, env: started.append(command))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = serve.main(["--host", host, "--port", str(port)])
    err = capsys.readouterr().err
    assert code != 0 and started == []
    assert f"serve: cannot start: {host}:{port} is already in use by PID {os.getpid()} (" in err
    assert "webhooks at" not in err and "Traceback" not in err


def test_a_free_port_is_not_reported_taken():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert serve.port_taken("127.0.0.1", port) is None


@pytest.mark.parametrize("given, posted", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/typeform"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/typeform"),
    ("https://fn.example.run.app/typeform", "https://fn.example.run.app/typeform"),
    ("https://fn.example.run.app/typeform/", "https://fn.example.run.app/typeform"),
])
def test_send_sample_takes_a_base_or_the_full_webhook_url(given, posted):
    from stardex_webhook.send_sample import webhook_url

    assert webhook_url(given, "typeform") == posted


def test_send_sample_says_when_it_took_the_url_as_the_webhook_url(receiver, capsys):
    url, received = receiver
    code = send_sample(["typeform", "--url", f"{url}/typeform", "--key", "k"])
    assert code == 0 and [path for path, _, _ in received] == ["/typeform"]
    assert "--url already ends in /typeform" in capsys.readouterr().err


def test_send_sample_names_a_missing_body(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:
        send_sample(["greenhouse", "--body", str(tmp_path / "missing.json")])
    assert exit_status.value.code != 0
    error = capsys.readouterr().err
    assert "missing.json" in error and "No such file" in error and "Traceback" not in error
