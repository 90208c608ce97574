"""fless.client.Client against a real HTTP server on 127.0.0.1 that records requests."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path

import pytest
from e2e.node import free_port

from fless.client import Client, FlessError, encode_form, encode_multipart

from .fake_fless import FakeFless

WASM = b"\0asm\x01\0\0\0" + bytes(range(256)) + b"\r\n--\r\n\xff"
FUNCTION = {"name": "hello", "module": "_", "hash": "ab", "size": len(WASM), "abi": "funless"}


@pytest.fixture
def client(fake: FakeFless) -> Client:
    return Client(fake.url, "secret-key", timeout=5)


# -- requests and answers


def test_bearer_header_and_data_unwrapped(fake: FakeFless, client: Client) -> None:
    fake.data("GET", "/v1/fn", [{"name": "_"}, {"name": "m"}])
    assert client.list_modules() == [{"name": "_"}, {"name": "m"}]
    assert fake.last.headers["Authorization"] == "Bearer secret-key"
    assert fake.last.headers["Accept"] == "application/json"


def test_no_key_sends_no_authorization(fake: FakeFless) -> None:
    fake.data("GET", "/v1/fn", [])
    Client(fake.url).list_modules()
    assert fake.last.headers["Authorization"] is None


def test_module_routes(fake: FakeFless, client: Client) -> None:
    fake.data("POST", "/v1/fn", {"name": "m"}, status=201)
    fake.data("GET", "/v1/fn/m", {"name": "m", "functions": [{"name": "f"}]})
    fake.data("PUT", "/v1/fn/m", {"name": "n"})
    fake.reply("DELETE", "/v1/fn/n", 204)
    assert client.create_module("m") == {"name": "m"}
    assert fake.last.json() == {"module": {"name": "m"}}
    assert fake.last.headers["Content-Type"] == "application/json"
    assert client.get_module("m")["functions"] == [{"name": "f"}]
    assert client.list_functions("m") == [{"name": "f"}]
    assert client.rename_module("m", "n") == {"name": "n"}
    assert fake.last.json() == {"module": {"name": "n"}}
    client.delete_module("n")
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/v1/fn"),
        ("GET", "/v1/fn/m"),
        ("GET", "/v1/fn/m"),
        ("PUT", "/v1/fn/m"),
        ("DELETE", "/v1/fn/n"),
    ]


def test_names_are_quoted_into_the_path(fake: FakeFless, client: Client) -> None:
    with pytest.raises(FlessError):
        client.get_function("a/b", "c?d")
    assert fake.last.path == "/v1/fn/a%2Fb/c%3Fd"


def test_invoke_sends_args_and_returns_data(fake: FakeFless, client: Client) -> None:
    fake.data("POST", "/v1/fn/_/hello", {"greeting": "hi ada"})
    assert client.invoke("_", "hello", {"name": "ada"}) == {"greeting": "hi ada"}
    assert fake.last.json() == {"args": {"name": "ada"}}
    fake.data("POST", "/v1/fn/_/hello", "plain text")
    assert client.invoke("_", "hello") == "plain text"
    assert fake.last.json() == {"args": {}}


def test_subjects(fake: FakeFless, client: Client) -> None:
    fake.data("GET", "/v1/admin/subjects", [{"name": "admin", "role": "admin"}])
    fake.data("POST", "/v1/admin/subjects", {"name": "alice", "token": "tok-123"})
    assert client.list_subjects() == [{"name": "admin", "role": "admin"}]
    assert client.create_subject("alice") == "tok-123"
    assert fake.last.json() == {"subject": {"name": "alice"}}


def test_url_prefix_is_kept(fake: FakeFless) -> None:
    fake.data("GET", "/proxy/v1/fn", [])
    assert Client(fake.url + "/proxy/", "k").list_modules() == []


# -- multipart


def _split_by_hand(content_type: str, body: bytes) -> list[bytes]:
    """The parts of a multipart body, checking its framing strictly (RFC 2046)."""
    match = re.fullmatch(r"multipart/form-data; boundary=([0-9a-f]{32})", content_type)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    assert body.startswith(delimiter + b"\r\n")
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n")
    inner = body[len(delimiter) + 2 : -(len(delimiter) + 6)]
    return inner.split(b"\r\n" + delimiter + b"\r\n")


def test_create_function_multipart_is_well_formed(fake: FakeFless, client: Client) -> None:
    fake.data("POST", "/v1/fn/m", FUNCTION, status=201)
    result = client.create_function(
        "m", "hello", WASM, memory=128, timeout=2500, http_allow=["api.example.com"]
    )
    assert result == FUNCTION
    request = fake.last
    assert request.headers["Authorization"] == "Bearer secret-key"
    assert int(request.headers["Content-Length"]) == len(request.body)
    parts = _split_by_hand(request.headers["Content-Type"], request.body)
    assert len(parts) == 4
    form = request.form()
    assert set(form) == {"name", "code", "metadata", "wait_for_workers"}
    assert form["name"].content == b"hello"
    assert form["name"].filename is None
    assert form["code"].content == WASM
    assert form["code"].filename == "code.wasm"
    assert form["code"].content_type == "application/octet-stream"
    assert json.loads(form["metadata"].content) == {
        "memory": 128,
        "timeout": 2500,
        "http_allow": ["api.example.com"],
    }
    assert form["wait_for_workers"].content == b"true"


def test_create_function_without_settings_sends_no_metadata(
    fake: FakeFless, client: Client
) -> None:
    fake.data("POST", "/v1/fn/_", FUNCTION, status=201)
    client.create_function("_", "hello", WASM, wait_for_workers=False)
    form = fake.last.form()
    assert set(form) == {"name", "code", "wait_for_workers"}
    assert form["wait_for_workers"].content == b"false"


def test_update_function_sends_only_what_changes(fake: FakeFless, client: Client) -> None:
    fake.data("PUT", "/v1/fn/_/hello", FUNCTION)
    client.update_function("_", "hello", memory=32, http_allow=[])
    form = fake.last.form()
    assert set(form) == {"metadata", "wait_for_workers"}
    assert json.loads(form["metadata"].content) == {"memory": 32, "http_allow": []}
    assert form["wait_for_workers"].content == b"true"
    client.update_function("_", "hello", WASM, new_name="hi", wait_for_workers=False)
    form = fake.last.form()
    assert set(form) == {"code", "name", "wait_for_workers"}
    assert form["wait_for_workers"].content == b"false"
    assert form["code"].content == WASM
    assert form["name"].content == b"hi"


EVENT = {"type": "cron", "params": {"schedule": "* * * * *"}}
SINK = {"type": "http", "params": {"url": "http://h/in"}}


def test_events_and_sinks_are_json_fields_and_a_207_is_data(
    fake: FakeFless, client: Client
) -> None:
    answer = {
        **FUNCTION,
        "events": [{"status": "error", "message": "bad schedule"}],
        "events_metadata": {"successful": 0, "failed": 1, "total": 1},
    }
    fake.data("POST", "/v1/fn/_", answer, status=207)
    assert client.create_function("_", "hello", WASM, events=[EVENT], sinks=[SINK]) == answer
    form = fake.last.form()
    assert json.loads(form["events"].content) == [EVENT]
    assert json.loads(form["sinks"].content) == [SINK]
    fake.data("POST", "/v1/fn/_", FUNCTION, status=201)
    client.create_function("_", "hello", WASM, events=[])
    assert set(fake.last.form()) == {"name", "code", "events", "wait_for_workers"}
    assert fake.last.form()["events"].content == b"[]"


def test_update_replaces_keeps_or_clears_bindings(fake: FakeFless, client: Client) -> None:
    fake.data("PUT", "/v1/fn/_/hello", FUNCTION)
    client.update_function("_", "hello", events=[EVENT], sinks=[])
    form = fake.last.form()
    assert (json.loads(form["events"].content), form["sinks"].content) == ([EVENT], b"[]")
    client.update_function("_", "hello", clear_events=True, clear_sinks=True)
    form = fake.last.form()
    assert (form["events"].content, form["sinks"].content) == (b"null", b"null")
    client.update_function("_", "hello", events=[], clear_events=True)
    assert fake.last.form()["events"].content == b"null"
    with pytest.raises(ValueError, match="give sinks or clear_sinks, not both"):
        client.update_function("_", "hello", sinks=[SINK], clear_sinks=True)


def test_invoke_async_and_get_invocation(fake: FakeFless, client: Client) -> None:
    fake.data("POST", "/v1/fn/m/f%20g?async=true", {"id": "a/b"}, status=202)
    assert client.invoke_async("m", "f g", {"x": 1}) == "a/b"
    assert fake.last.json() == {"args": {"x": 1}}
    fake.data("GET", "/v1/invocations/a%2Fb", {"id": "a/b", "state": "queued"})
    assert client.get_invocation("a/b") == {"id": "a/b", "state": "queued"}
    fake.data("POST", "/v1/fn/m/f?async=true", {}, status=202)
    with pytest.raises(FlessError, match="no invocation id"):
        client.invoke_async("m", "f")
    fake.error("POST", "/v1/fn/m/f?async=true", 429, "the queue is full")
    with pytest.raises(FlessError) as caught:
        client.invoke_async("m", "f")
    assert caught.value.status == 429


def test_boundary_never_occurs_in_content() -> None:
    content_type, body = encode_multipart({"a": "x"}, {"f": ("f.bin", b"\0" * 10)})
    boundary = content_type.split("boundary=")[1]
    assert body.count(boundary.encode()) == 3


def test_a_form_keeps_its_parts_order_repeats_and_given_boundary() -> None:
    parts = [("b", None, b"\xff"), ("a", "a.bin", b"1"), ("b", None, b"2")]
    content_type, body = encode_form(parts, "given")
    assert content_type == "multipart/form-data; boundary=given"
    assert body == (
        b'--given\r\nContent-Disposition: form-data; name="b"\r\n\r\n\xff\r\n'
        b'--given\r\nContent-Disposition: form-data; name="a"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n1\r\n"
        b'--given\r\nContent-Disposition: form-data; name="b"\r\n\r\n2\r\n'
        b"--given--\r\n"
    )


def test_a_lone_surrogate_in_a_name_is_refused_unless_passed_on_purpose() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_form([("\ud800", None, b"")])
    _, body = encode_form([("\ud800", None, b"")], "b", errors="surrogatepass")
    assert b'name="\xed\xa0\x80"' in body


# -- errors


def test_error_json_becomes_flesserror(fake: FakeFless, client: Client) -> None:
    fake.error("GET", "/v1/fn/_/hello", 404, "function _/hello not found")
    with pytest.raises(FlessError) as caught:
        client.get_function("_", "hello")
    assert caught.value.status == 404
    assert caught.value.detail == "function _/hello not found"
    assert str(caught.value) == "404: function _/hello not found"


def test_a_refused_name_shows_the_detail_beside_funless_reasons(
    fake: FakeFless, client: Client
) -> None:
    body = {"errors": {"name": ["has already been taken"], "detail": "module m already exists"}}
    fake.reply("POST", "/v1/fn", 422, body)
    with pytest.raises(FlessError, match=r"^422: module m already exists$"):
        client.create_module("m")


def test_function_failure_is_a_422(fake: FakeFless, client: Client) -> None:
    fake.error("POST", "/v1/fn/_/boom", 422, "the function failed:\nno name given")
    with pytest.raises(FlessError, match=r"^422: the function failed: no name given$"):
        client.invoke("_", "boom", {})


def test_error_without_json_uses_the_body_or_reason(fake: FakeFless, client: Client) -> None:
    fake.routes[("GET", "/v1/fn")] = (502, b"upstream down\nmore")
    with pytest.raises(FlessError, match=r"^502: upstream down$"):
        client.list_modules()
    fake.routes[("GET", "/v1/fn")] = (503, b"")
    with pytest.raises(FlessError, match=r"^503: Service Unavailable$"):
        client.list_modules()


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FlessError) as caught:
        Client(url, "k").list_modules()
    assert caught.value.status == 0
    assert str(caught.value) == (
        f"cannot reach fless at {url}: connection refused (is fless-node running?)"
    )


def test_no_answer_in_time(fake: FakeFless) -> None:
    fake.delay = 1.0
    with pytest.raises(FlessError, match=r"^no answer from fless at .* within 0.2 s$"):
        Client(fake.url, timeout=0.2).list_modules()


def test_hang_up_on_a_new_connection_is_not_retried(fake: FakeFless, client: Client) -> None:
    fake.hang_up = True
    with pytest.raises(FlessError, match="closed the connection without answering"):
        client.invoke("_", "hello", {})
    assert len(fake.requests) == 1


def test_bad_urls_are_refused() -> None:
    for url in ("ftp://host", "http://", "http://host:notaport", "http://h/?q=1"):
        with pytest.raises(FlessError, match="invalid fless URL"):
            Client(url)
    assert Client("192.168.1.10:4000/").url == "http://192.168.1.10:4000"


# -- the connection


def test_keep_alive_reuses_one_connection(fake: FakeFless, client: Client) -> None:
    fake.data("GET", "/v1/fn", [])
    fake.data("POST", "/v1/fn/_/hello", 1)
    client.list_modules()
    client.invoke("_", "hello", {})
    client.list_modules()
    assert len(fake.requests) == 3
    assert len({r.client_port for r in fake.requests}) == 1


def test_reconnects_once_when_the_server_closed_the_connection(
    fake: FakeFless, client: Client
) -> None:
    fake.data("GET", "/v1/fn", [])
    fake.drop_after_answer = True
    client.list_modules()
    client.list_modules()
    assert len(fake.requests) == 2
    assert len({r.client_port for r in fake.requests}) == 2


def test_close_and_context_manager(fake: FakeFless) -> None:
    fake.data("GET", "/v1/fn", [])
    with Client(fake.url) as client:
        client.list_modules()
        client.close()
        client.list_modules()
    assert len({r.client_port for r in fake.requests}) == 2


def test_https_with_a_trusted_certificate(tls_fake: FakeFless, tls_cert: tuple[Path, Path]) -> None:
    tls_fake.data("GET", "/v1/fn", [{"name": "_"}])
    context = ssl.create_default_context(cafile=str(tls_cert[0]))
    client = Client(tls_fake.url, "k", ssl_context=context)
    assert client.list_modules() == [{"name": "_"}]
    assert client.list_modules() == [{"name": "_"}]
    assert tls_fake.last.headers["Authorization"] == "Bearer k"
    assert len({r.client_port for r in tls_fake.requests}) == 1


def test_https_with_an_untrusted_certificate(tls_fake: FakeFless) -> None:
    with pytest.raises(FlessError, match=r"^cannot reach fless at https://.*: TLS failed"):
        Client(tls_fake.url, "k").list_modules()


# -- from_config


def test_from_config_reads_the_file_and_env_overrides(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (cli_env / "fless").mkdir(parents=True)
    (cli_env / "fless" / "config.toml").write_text('host = "http://file:1"\nkey = "filekey"\n')
    client = Client.from_config()
    assert (client.url, client.key) == ("http://file:1", "filekey")
    monkeypatch.setenv("FLESS_URL", "http://env:2")
    monkeypatch.setenv("FLESS_KEY", "envkey")
    client = Client.from_config()
    assert (client.url, client.key) == ("http://env:2", "envkey")
    client = Client.from_config(url="http://arg:3", key="argkey")
    assert (client.url, client.key) == ("http://arg:3", "argkey")


def test_from_config_defaults() -> None:
    client = Client.from_config()
    assert (client.url, client.key) == ("http://127.0.0.1:4000", None)


def test_from_config_bad_file(cli_env: Path) -> None:
    (cli_env / "fless").mkdir(parents=True)
    (cli_env / "fless" / "config.toml").write_text("host = [1]\n")
    with pytest.raises(FlessError, match="host must be a string"):
        Client.from_config()
    (cli_env / "fless" / "config.toml").write_text("host = \n")
    with pytest.raises(FlessError, match="cannot read config file"):
        Client.from_config()
