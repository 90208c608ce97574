"""Test 8: fuzzing the API, by its schema and by the classes schemas miss.

First, schemathesis against a real node's own OpenAPI document: every
documented operation gets a bounded number of generated requests, valid and
invalid, with the admin key. A 500, an undocumented status, or a body or
header that breaks the documented schema fails the test: bad input must get a
clear 4xx.

Schema-driven fuzzing found no 500 while about thirty hand-made inputs did
(issue 12): JSON nested 100,000 deep, integers past Python's 4,300 digits,
digits of other scripts, lone surrogates, empty or odd path segments, names
ending in a newline, NaN output. The property tests below generate those
classes with hypothesis and send them to the real app (real LMDB store, real
Wasmtime worker) over ASGI: no answer may be a 5xx, every 4xx is a JSON
``{"errors": {"detail": ...}}``, every JSON answer parses as strict JSON.
They are derandomized with no example database, so a run is repeatable.
"""

from __future__ import annotations

import itertools
import json
import socket
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from e2e.node import Node, free_port
from fixtures import build
from fixtures.asgi import AppDriver, fixed_output, multipart
from fixtures.wire import read_until_closed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fless.api import openapi_document
from fless.core import JSON_MAX_DEPTH

# Bounded so the whole run stays well under a minute on two cores.
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = Node(tmp_path_factory.mktemp("fuzz") / "n").start()
    try:
        yield started
    finally:
        started.stop()


# The document the node serves is the packaged file (the last test checks it
# on this node); it is loaded at import so the operations are known when
# pytest collects. (schemathesis's lazy fixture loader does not run on pytest 9.)
schema = (
    schemathesis.openapi.from_dict(json.loads(openapi_document()))
    # Joining would send gossip to whatever address the fuzzer makes up:
    # traffic would leave loopback. Its input checks are tested by hand instead.
    .exclude(operation_id="join_node")
)


# Operations whose schema-valid input may still be refused with the documented
# 400 for a rule a JSON schema cannot state, or with FunLess's 422 for a name
# taken (schemathesis takes only a 409 for that); only there may valid-looking
# data be rejected. Every other check (no 5xx, documented statuses, bodies,
# headers and content types, invalid data refused) runs on every operation.
SEMANTIC_400 = {
    "POST /v1/fn": "a module name taken is FunLess's 422",
    "POST /v1/admin/subjects": "a subject name taken is FunLess's 422",
    "POST /v1/fn/{module_name}": "the code must be a valid WebAssembly module",
    "PUT /v1/fn/{module_name}/{function_name}": "new code must be valid WebAssembly",
    "PUT /v1/fn/{module_name}": "the default module _ cannot be renamed",
    "DELETE /v1/fn/{module_name}": "the default module _ cannot be deleted",
    "DELETE /v1/admin/subjects/{subject_name}": "an admin is rotated, not revoked",
    "POST /v1/scripts/app": "the file must be an APP script that parses; a name taken is 422",
    "PUT /v1/scripts/app/{app_name}": "the file must be an APP script that parses",
}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_api_answers_every_generated_request_as_documented(
    case: schemathesis.Case, node: Node
) -> None:
    # The key is read for every call: a rotation by the fuzzer rewrites admin.key.
    semantic = case.operation.label in SEMANTIC_400
    case.call_and_validate(
        base_url=node.url,
        headers={"Authorization": f"Bearer {node.key}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance] if semantic else [],
    )


def test_the_node_served_the_fuzzed_document_and_still_serves(node: Node) -> None:
    status, served = node.request("GET", "/v1/openapi.json", auth=False)
    assert (status, served) == (200, json.loads(openapi_document()))
    assert node.request("GET", "/v1/fn")[0] == 200
    assert "Traceback" not in node.log(), node.log()[-3000:]


def test_a_join_where_nothing_listens_is_the_documented_502(node: Node) -> None:
    # A free loopback port: nothing answers there, and nothing leaves loopback.
    address = f"127.0.0.1:{free_port()}"
    status, body = node.post_json("/v1/admin/nodes", {"address": address})
    assert status == 502, body
    assert address in body["errors"]["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/fn", b"[" * 100_000 + b"]" * 100_000, 400),
        ("POST", "/v1/fn", b'{"module": {"name": ' + b"1" * 5000 + b"}}", 400),
        ("POST", "/v1/fn", b'{"module": {"name": "m\\n"}}', 422),
        ("POST", "/v1/fn", b'{"module": {"name": "\\ud800"}}', 400),
        ("GET", "/v1/invocations?limit=%C2%B2", None, 400),
        ("GET", "/v1/fn//x", None, 404),
        ("DELETE", "/v1/admin/subjects/", None, 404),
        ("POST", "/v1/admin/nodes", b'{"address": "127.0.0.1:\\u00b2"}', 400),
    ],
)
def test_hand_made_inputs_get_a_clear_4xx_over_real_sockets(
    node: Node, method: str, path: str, body: bytes | None, status: int
) -> None:
    got, answer = node.request(method, path, body, {"Content-Type": "application/json"})
    assert got == status, answer
    assert answer["errors"]["detail"]


# -- the classes schemas miss, generated --------------------------------------

# Bounded and repeatable: a few seconds per property on two cores.
PROPERTY = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Decimal digits of other scripts, which str.isdigit takes and int() may not.
OTHER_DIGITS = (
    "\u00b2\u00b3\u00b9\u0663\u06f4\u07c5\u0966\u09e7\u0a68\u0aeb\u0e59\u0f23\u1040"
    "\u17e0\uff10\U0001d7ce"
)
ODD_CHARACTERS = st.one_of(
    st.sampled_from(
        [
            *OTHER_DIGITS,
            "\x00",
            "\n",
            "\r",
            "\t",
            " ",
            "\u202e",
            "\u200f",
            "\u0301",
            "\u0300",
            "\ufeff",
            "\u2028",
            "/",
            "\\",
            "%",
            "?",
            "#",
            ".",
            ":",
            '"',
            "'",
        ]
    ),
    st.integers(0xD800, 0xDFFF).map(chr),  # lone surrogates
    st.characters(),
)
odd_text = st.text(ODD_CHARACTERS, max_size=24)


def nested(depth: int, kind: str) -> str:
    """JSON nested ``depth`` deep: lists, or objects."""
    opening, closing = ("[", "]") if kind == "list" else ('{"a":', "}")
    return opening * depth + "1" + closing * depth


deep_json = st.builds(
    nested, st.integers(JSON_MAX_DEPTH - 3, 120_000), st.sampled_from(["list", "object"])
)
huge_number = st.one_of(
    st.integers(4290, 20_000).map(lambda n: "1" * n),
    st.integers(4290, 20_000).map(lambda n: "-" + "9" * n),
    st.integers(300, 800).map(lambda n: "9" * n),  # a 400-digit capacity, say
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e99999",
            "1e-99999",
            "0." + "0" * 5000 + "1",
            "1" * 4300,
            "1.5",
            "-0",
        ]
    ),
)
lone_surrogate = st.integers(0xD800, 0xDFFF).map(lambda c: f'"x\\u{c:04x}"')
# json.dumps escapes what needs it (a lone surrogate becomes \udxxx).
odd_string = odd_text.map(json.dumps)
json_value = st.one_of(
    deep_json,
    huge_number,
    lone_surrogate,
    odd_string,
    st.sampled_from(["{}", "[]", "null", "true", '""']),
)
count_text = st.one_of(
    odd_text,
    st.text(st.sampled_from(OTHER_DIGITS + "0123456789"), min_size=1, max_size=6),
    st.integers(4000, 6000).map(lambda n: "7" * n),
    st.integers(-5, 2000).map(str),
)


def quoted(segment: str) -> str:
    """A path segment as a client would put it in a URL (bad UTF-8 included)."""
    return urllib.parse.quote(segment, safe="", errors="surrogatepass")


path_segment = st.one_of(
    odd_text,
    st.just(""),
    st.integers(161, 700).map(lambda n: "a" * n),
    st.from_regex(r"[_a-zA-Z0-9]{1,8}", fullmatch=True),
).map(quoted)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDriver]:
    driver = AppDriver(tmp_path_factory.mktemp("fuzz-app"))
    assert driver.upload("_", "echo", build.wat("fl_hello")).status_code == 201
    yield driver
    driver.close()


def strict_json(text: str) -> Any:
    """``text`` as JSON every parser takes: no NaN, no Infinity."""

    def constant(name: str) -> None:
        raise AssertionError(f"{name} in an answer is not JSON")

    # Numbers by their syntax: a function may answer an integer Python won't read.
    return json.loads(text, parse_constant=constant, parse_int=str, parse_float=str)


def answered_cleanly(result: Any, what: str) -> None:
    """No 5xx; a 4xx carries ``{"errors": {"detail": "..."}}``; JSON answers are strict JSON."""
    status = result.status_code
    assert status < 500, f"{what}: {status} {result.text[:300]}"
    media = result.headers.get("content-type", "")
    if status >= 400:
        assert media.startswith("application/json"), f"{what}: {status} as {media}"
        detail = strict_json(result.text)["errors"]["detail"]
        assert isinstance(detail, str) and detail, f"{what}: {result.text[:300]}"
    elif media.startswith("application/json") and result.text:
        strict_json(result.text)


JSON_ROUTES = [
    ("POST", "/v1/fn/_/echo", lambda v: '{"args": {"x": ' + v + "}}"),
    ("POST", "/v1/fn/_/echo", lambda v: '{"args": ' + v + "}"),
    # The public trigger: the body is the args, with or without a key.
    ("POST", "/fn/_/echo", lambda v: '{"x": ' + v + "}"),
    ("POST", "/fn/_/echo", lambda v: v),
    ("POST", "/v1/fn", lambda v: '{"module": {"name": ' + v + "}}"),
    ("PUT", "/v1/fn/_", lambda v: '{"module": {"name": ' + v + "}}"),
    ("POST", "/v1/admin/subjects", lambda v: '{"subject": {"name": ' + v + "}}"),
    ("POST", "/v1/admin/nodes", lambda v: '{"address": ' + v + "}"),
    ("POST", "/v1/fn", lambda v: v),
]


@PROPERTY
@given(route=st.sampled_from(JSON_ROUTES), value=json_value)
def test_odd_json_in_any_body_gets_a_clean_answer(
    app: AppDriver, route: tuple[str, str, Any], value: str
) -> None:
    method, path, body = route
    answered_cleanly(app.request(method, path, body=body(value)), f"{method} {path}")


# Text as raw bytes, not as escapes: a surrogate encoded alone (ED A0 80),
# bytes that are not UTF-8, other encodings' byte order marks.
raw_json_string = st.one_of(
    st.integers(0xD800, 0xDFFF).map(
        lambda c: b'"x' + chr(c).encode("utf-8", "surrogatepass") + b'"'
    ),
    odd_text.map(lambda t: b'"' + t.encode("utf-8", "surrogatepass") + b'"'),
    st.binary(max_size=24).map(lambda b: b'"' + b + b'"'),
    st.sampled_from([b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"\xfe\xff\x00[\x00]"]),
)


@PROPERTY
@given(route=st.sampled_from(JSON_ROUTES), value=raw_json_string)
def test_raw_odd_bytes_in_any_body_get_a_clean_answer(
    app: AppDriver, route: tuple[str, str, Any], value: bytes
) -> None:
    method, path, body = route
    # The route's template is text; the value goes in as the bytes generated.
    head, _, tail = body("\x00").encode().partition(b"\x00")
    answered_cleanly(app.request(method, path, body=head + value + tail), f"{method} {path}")


@PROPERTY
@given(
    field=st.sampled_from(["metadata", "events", "sinks", "name", "wait_for_workers"]),
    value=st.one_of(
        json_value.map(str.encode),
        st.builds(
            lambda key, v: ('{"' + key + '": ' + v + "}").encode(),
            st.sampled_from(["memory", "capacity", "timeout", "retries", "http_allow"]),
            json_value,
        ),
        st.binary(max_size=64),
    ),
)
def test_odd_multipart_fields_get_a_clean_answer(app: AppDriver, field: str, value: bytes) -> None:
    fields = [("name", None, b"fuzzed"), ("code", "c.wasm", build.wat("fl_hello"))]
    fields = [f for f in fields if f[0] != field] + [(field, None, value)]
    result = app.request("PUT", "/v1/fn/_/echo", **multipart(fields[1:]))
    answered_cleanly(result, f"PUT field {field}")
    answered_cleanly(app.request("POST", "/v1/fn/_", **multipart(fields)), f"POST field {field}")


@PROPERTY
@given(
    parts=st.lists(
        st.tuples(odd_text, st.one_of(st.none(), odd_text), st.binary(max_size=32)), max_size=20
    ),
    boundary=st.one_of(st.none(), st.text(st.characters(codec="ascii"), min_size=1, max_size=72)),
    mangle=st.sampled_from(["none", "cut", "no-close", "wrong-boundary", "garbage-head"]),
)
def test_odd_multipart_bodies_get_a_clean_answer(
    app: AppDriver, parts: list[tuple[str, str | None, bytes]], boundary: str | None, mangle: str
) -> None:
    form = multipart(parts, boundary)
    body: bytes = form["body"]
    if mangle == "cut":
        body = body[: len(body) // 2]
    elif mangle == "no-close":
        body = body.rsplit(b"--", 2)[0]
    elif mangle == "wrong-boundary":
        form["headers"]["Content-Type"] = "multipart/form-data; boundary=other"
    elif mangle == "garbage-head":
        body = body.replace(b"Content-Disposition", b"Content-\x00Disposition\xff", 1)
    answered_cleanly(
        app.request("POST", "/v1/fn/_", body=body, headers=form["headers"]), f"multipart {mangle}"
    )


@PROPERTY
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"]),
    template=st.sampled_from(
        [
            "/v1/fn/{}",
            "/v1/fn/{}/{}",
            "/v1/fn/_/{}",
            "/v1/fn/{}/{}/logs",
            "/v1/admin/subjects/{}",
            "/v1/fn/{}/echo",
            "/ui/{}/{}",
            "/fn/{}/{}",
            "/fn/_/{}",
        ]
    ),
    first=path_segment,
    second=path_segment,
)
def test_odd_path_segments_get_a_clean_answer(
    app: AppDriver, method: str, template: str, first: str, second: str
) -> None:
    path = template.format(first, second)
    # Never the admin itself (a revoke is refused, but a rename or delete of a
    # module the fuzzer made up is fine).
    answered_cleanly(app.request(method, path, body=b"{}"), f"{method} {path}")


@PROPERTY
@given(
    route=st.sampled_from(
        [
            ("POST", "/v1/fn/_/echo", "retries"),
            ("GET", "/v1/invocations", "limit"),
            ("GET", "/v1/fn/_/echo/logs", "limit"),
        ]
    ),
    value=count_text,
)
def test_odd_counts_in_a_query_get_a_clean_answer(
    app: AppDriver, route: tuple[str, str, str], value: str
) -> None:
    method, path, name = route
    query = f"{name}={quoted(value)}"
    answered_cleanly(app.request(method, path, query_string=query), f"{method} {path}?{query}")


@PROPERTY
@given(host=odd_text, port=st.one_of(count_text, st.integers(-1, 70_000).map(str)))
def test_odd_join_addresses_get_a_clean_answer(app: AppDriver, host: str, port: str) -> None:
    # This app has no cluster: an address that passes the checks is refused
    # with "not part of a cluster", so nothing is ever sent anywhere.
    body = json.dumps({"address": f"{host}:{port}"})
    answered_cleanly(app.request("POST", "/v1/admin/nodes", body=body), "join")


# A request head's pieces, as bytes a client could send: odd methods, paths
# with raw bytes, versions, header names and values that break HTTP/1.1.
head_token = st.one_of(
    st.sampled_from(
        [
            b"GET",
            b"POST",
            b"PUT",
            b"DELETE",
            b"PATCH",
            b"HEAD",
            b"OPTIONS",
            b"TRACE",
            b"CONNECT",
            b"PRI",
            b"FOO",
            b"get",
            b"G\x00T",
            b"X" * 300,
        ]
    ),
    st.binary(min_size=1, max_size=12).filter(lambda b: b" " not in b and b"\r\n" not in b),
)
head_path = st.one_of(
    st.sampled_from(
        [
            b"/v1/",
            b"/v1/fn",
            b"/v1/fn//x",
            b"*",
            b"http://x/v1/",
            b"/v1/fn/%ED%A0%80",
            b"/v1/fn/\xff",
            b"/v1/fn/a%00",
            b"/v1/../v1/fn",
            b"/ui/../v1/fn",
        ]
    ),
    st.binary(max_size=40).map(
        lambda b: b"/v1/fn/" + b.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b"")
    ),
)
head_version = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.2", b"HTTPS/1.1", b"", b"HTTP/11"]
)
head_field = st.one_of(
    st.sampled_from(
        [
            b"Content-Length: -1",
            b"Content-Length: 1e3",
            b"Content-Length: 99999999999",
            "Content-Length: \u0663".encode(),
            b"Transfer-Encoding: gzip",
            b"Transfer-Encoding: chunked",
            b"Upgrade: websocket",
            b"Upgrade: h2c",
            b"Connection: Upgrade",
            b"Expect: 100-continue",
            b"Expect: nonsense",
            b"Authorization: Basic eDp5",
            b"Authorization: Bearer \xff\x00",
            b"Content-Type: \xff",
            b": empty",
            b"X-A: a\x00b",
            b"no colon",
        ]
    ),
    st.tuples(st.binary(min_size=1, max_size=10), st.binary(max_size=20)).map(
        lambda nv: (
            nv[0].replace(b"\r", b"").replace(b"\n", b"")
            + b": "
            + nv[1].replace(b"\r", b"").replace(b"\n", b"")
        )
    ),
)


def exchange(node: Node, request: bytes) -> bytes:
    """``request`` as is on a new connection; all the node answered before closing."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=15) as sock:
        sock.sendall(request)
        return read_until_closed(sock, timeout=15)


@settings(PROPERTY, max_examples=60)
@given(
    method=head_token,
    path=head_path,
    version=head_version,
    fields=st.lists(head_field, max_size=4),
    body=st.binary(max_size=16),
)
def test_odd_request_heads_get_a_json_answer_over_real_sockets(
    node: Node, method: bytes, path: bytes, version: bytes, fields: list[bytes], body: bytes
) -> None:
    head = b"%s %s %s\r\nHost: x\r\nConnection: close\r\n" % (method, path, version)
    answer = exchange(node, head + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body)
    what = f"{head[:80]!r} {fields}"
    if not answer:
        return  # closed without an answer (a head that names a body never sent, say)
    status_line, _, rest = answer.partition(b"\r\n")
    status = int(status_line.split(b" ")[1])
    assert status != 500, f"{what}: {answer[:300]!r}"
    headers, _, content = rest.partition(b"\r\n\r\n")
    if status >= 400 and method != b"HEAD":
        fields_sent = dict(
            line.lower().split(b": ", 1) for line in headers.split(b"\r\n") if b": " in line
        )
        assert fields_sent.get(b"content-type") == b"application/json", f"{what}: {answer[:300]!r}"
        # Only this answer's bytes (a body sent without a length may be read as a next request).
        length = int(fields_sent[b"content-length"])
        assert json.loads(content[:length])["errors"]["detail"], what


_output_names = (f"out{i}" for i in itertools.count())


@settings(PROPERTY, max_examples=15)
@given(
    output=st.one_of(
        deep_json,
        huge_number,
        lone_surrogate,
        odd_string,
        st.builds(lambda a, b: "[" + a + ", " + b + "]", huge_number, odd_string),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    )
)
def test_any_function_output_gets_a_clean_answer(app: AppDriver, output: str) -> None:
    name = next(_output_names)
    code = fixed_output(output.encode("utf-8", "surrogatepass"))
    assert app.upload("_", name, code).status_code == 201
    answered_cleanly(app.request("POST", f"/v1/fn/_/{name}"), f"output {output[:60]!r}")


def test_the_fuzzed_app_logged_no_internal_error(
    app: AppDriver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("ERROR", logger="fless"):
        answered_cleanly(app.request("GET", "/v1/fn//x"), "after the fuzzing")
    assert app.request("GET", "/v1/").status_code == 200
    assert "internal error" not in caplog.text
