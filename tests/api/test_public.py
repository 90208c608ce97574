"""Raw bodies (issue 16.5): /v1's invoke says when it got no args, and the public trigger.

Driven over ASGI against the real app (LMDB store, Wasmtime worker). A public
call over real sockets with no key is in ``tests/e2e/test_public_trigger.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.asgi
import falcon.testing
import pytest
from fixtures import asgi, build
from fixtures.asgi import AppDriver, fixed_output, multipart

from fless.api import _errors, create_app
from fless.api._app import PUBLIC_RATE_BURST, PUBLIC_RATE_PER_S
from fless.api._auth import AuthMiddleware
from fless.api._public import MOST_RUNNING, PUBLIC_BUDGET_SHARE, PublicGate
from fless.api._ratelimit import RateLimiter, client_address
from fless.config import ApiSettings


def open_driver(data_dir: Path, **settings: Any) -> AppDriver:
    """An ``AppDriver`` whose app is made with ``settings`` (rate limits, say)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asgi, "create_app", functools.partial(create_app, **settings))
        return AppDriver(data_dir)


def create(driver: AppDriver, name: str, code: bytes, metadata: dict[str, Any] | None) -> None:
    fields = [("name", None, name.encode()), ("code", "code.wasm", code)]
    if metadata is not None:
        fields.append(("metadata", None, json.dumps(metadata).encode()))
    result = driver.request("POST", "/v1/fn/_", **multipart(fields))
    assert result.status_code == 201, result.text


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDriver]:
    # No limit here: the limit has its own driver below.
    opened = open_driver(tmp_path_factory.mktemp("public"), public_rate_per_s=0)
    hello = build.wat("fl_hello")
    create(opened, "pub", hello, {"public": True})
    create(opened, "private", hello, None)
    create(opened, "text", fixed_output(b"<script>alert(1)</script>"), {"public": True})
    create(opened, "binary", fixed_output(b"\xff\xfe\x00"), {"public": True})
    create(opened, "quiet", fixed_output(b""), {"public": True})
    create(opened, "trap", build.wat("fl_trap"), {"public": True})
    yield opened
    opened.close()


def detail(result: Any) -> str:
    assert result.headers["content-type"].startswith("application/json"), result.headers
    text: str = json.loads(result.text)["errors"]["detail"]
    return text


# -- /v1: FunLess's invoke, saying when the body gave no args ------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"name": "edge"}', "no-args-field"),
        ("{}", "no-args-field"),
        ('{"scheduling": {"language": "none"}}', "no-args-field"),
        ("", "empty-body"),
        ("  \n", "empty-body"),
    ],
)
def test_v1_invoke_without_args_runs_with_none_and_says_so(
    driver: AppDriver, body: str, reason: str
) -> None:
    result = driver.request("POST", "/v1/fn/_/pub", body=body)
    assert result.status_code == 200, result.text
    assert result.json == {"data": {"hello": {}}}  # FunLess's behaviour, kept
    assert result.headers["x-fless-args"] == f"none; reason={reason}"


def test_v1_invoke_with_args_has_no_args_header(driver: AppDriver) -> None:
    result = driver.request("POST", "/v1/fn/_/pub", body='{"args": {"name": "edge"}}')
    assert result.json == {"data": {"hello": {"name": "edge"}}}
    assert "x-fless-args" not in result.headers


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("name=edge", "request body refused"),
        ('["edge"]', "must be a JSON object"),
        ('{"args": null}', '"args" must be a JSON object'),
        ('{"args": "edge"}', '"args" must be a JSON object'),
    ],
)
def test_v1_invoke_body_that_is_not_an_object_is_400(
    driver: AppDriver, body: str, words: str
) -> None:
    result = driver.request("POST", "/v1/fn/_/pub", body=body)
    assert result.status_code == 400
    assert words in detail(result)


# -- the public flag --------------------------------------------------------------


def test_public_is_a_metadata_field_shown_and_changed_by_update(driver: AppDriver) -> None:
    assert driver.request("GET", "/v1/fn/_/pub").json["data"]["public"] is True
    assert driver.request("GET", "/v1/fn/_/private").json["data"]["public"] is False
    create(driver, "flip", build.wat("fl_hello"), None)
    try:
        for value in (True, False):
            form = multipart([("metadata", None, json.dumps({"public": value}).encode())])
            assert driver.request("PUT", "/v1/fn/_/flip", **form).json["data"]["public"] is value
            assert driver.request("POST", "/fn/_/flip", auth=False).status_code == (
                200 if value else 404
            )
        # An update that does not name it keeps it.
        form = multipart([("metadata", None, b'{"public": true}')])
        driver.request("PUT", "/v1/fn/_/flip", **form)
        form = multipart([("metadata", None, b'{"memory": 32}')])
        assert driver.request("PUT", "/v1/fn/_/flip", **form).json["data"]["public"] is True
    finally:
        driver.request("DELETE", "/v1/fn/_/flip")


@pytest.mark.parametrize("value", ['"true"', "1", "null", "[]"])
def test_public_must_be_a_boolean(driver: AppDriver, value: str) -> None:
    form = multipart([("metadata", None, ('{"public": ' + value + "}").encode())])
    result = driver.request("PUT", "/v1/fn/_/private", **form)
    if value == "null":  # null leaves it as it is, as for every metadata key
        assert result.status_code == 200
        assert result.json["data"]["public"] is False
        return
    assert result.status_code == 400
    assert "metadata public must be true or false" in detail(result)


# -- the public trigger -----------------------------------------------------------


def test_a_public_function_takes_the_raw_body_without_a_key(driver: AppDriver) -> None:
    result = driver.request("POST", "/fn/_/pub", auth=False, body='{"name": "edge"}')
    assert result.status_code == 200, result.text
    assert result.json == {"hello": {"name": "edge"}}  # the output itself, no envelope
    assert result.headers["content-type"] == "application/json"
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["x-fless-invocation"]
    # Where it ran is the cluster's business, not an anonymous caller's.
    assert "x-fless-worker" not in result.headers
    assert "x-fless-attempts" not in result.headers


def test_the_body_is_taken_whatever_content_type_curl_sends(driver: AppDriver) -> None:
    # curl -d sends application/x-www-form-urlencoded; the body is still JSON.
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    result = driver.request("POST", "/fn/_/pub", auth=False, body='{"a": 1}', headers=headers)
    assert result.json == {"hello": {"a": 1}}


def test_an_empty_body_is_empty_args(driver: AppDriver) -> None:
    assert driver.request("POST", "/fn/_/pub", auth=False).json == {"hello": {}}


def test_get_takes_the_args_from_the_query(driver: AppDriver) -> None:
    result = driver.request("GET", "/fn/_/pub", auth=False, query_string="name=edge&n=1")
    assert result.json == {"hello": {"name": "edge", "n": "1"}}
    twice = driver.request("GET", "/fn/_/pub", auth=False, query_string="n=1&n=2")
    assert twice.status_code == 400
    assert "'n' is given more than once" in detail(twice)


def test_a_non_public_function_is_answered_as_a_missing_one(driver: AppDriver) -> None:
    def answer(path: str, **kwargs: Any) -> tuple[int, str]:
        result = driver.request("POST", path, auth=False, **kwargs)
        return result.status_code, detail(result)

    assert answer("/fn/_/private") == (404, "function _/private not found")
    assert answer("/fn/_/nothing") == (404, "function _/nothing not found")
    assert answer("/fn/nomodule/private") == (404, "function nomodule/private not found")
    # The body is checked first, for every name alike: a bad one does not
    # tell a function that exists from one that does not.
    for path in ("/fn/_/private", "/fn/_/nothing", "/fn/_/pub"):
        status, words = answer(path, body="[1]")
        assert (status, "must be a JSON object" in words) == (400, True), path


def test_a_key_calls_any_function_and_sees_where_it_ran(driver: AppDriver) -> None:
    result = driver.request("POST", "/fn/_/private", body='{"k": true}')
    assert result.status_code == 200, result.text
    assert result.json == {"hello": {"k": True}}
    assert result.headers["x-fless-worker"]
    # With a key, a missing function says what the store says.
    assert detail(driver.request("POST", "/fn/nomodule/x")) == "module nomodule not found"


def test_a_wrong_key_is_refused_even_for_a_public_function(driver: AppDriver) -> None:
    headers = {"Authorization": "Bearer not-a-key"}
    result = driver.request("POST", "/fn/_/pub", auth=False, headers=headers)
    assert result.status_code == 401
    assert detail(result) == "invalid API key"


def test_output_is_served_with_its_own_type_and_never_as_html(driver: AppDriver) -> None:
    text = driver.request("POST", "/fn/_/text", auth=False)
    assert text.status_code == 200
    assert text.text == "<script>alert(1)</script>"
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert "sandbox" in text.headers["content-security-policy"]
    binary = driver.request("POST", "/fn/_/binary", auth=False)
    assert binary.content == b"\xff\xfe\x00"
    assert binary.headers["content-type"] == "application/octet-stream"
    quiet = driver.request("POST", "/fn/_/quiet", auth=False)
    assert (quiet.status_code, quiet.content) == (204, b"")


def test_a_failed_call_keeps_where_it_ran_from_a_caller_without_a_key(
    driver: AppDriver,
) -> None:
    anonymous = driver.request("POST", "/fn/_/trap", auth=False)
    assert anonymous.status_code == 422, anonymous.text
    assert detail(anonymous)
    assert anonymous.headers["x-fless-invocation"]
    assert "x-fless-worker" not in anonymous.headers
    keyed = driver.request("POST", "/fn/_/trap")
    assert keyed.status_code == 422
    assert keyed.headers["x-fless-worker"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("name=edge", 400, "request body refused"),
        ('"edge"', 400, "must be a JSON object"),
        ('{"args": ' * 300 + "1" + "}" * 300, 400, "deeper than"),
        ('{"x": NaN}', 400, "NaN is not JSON"),
        ('{"x": "\\ud800"}', 400, "lone surrogate"),
        (b"\xff{}", 400, "request body refused"),
    ],
)
def test_bad_bodies_get_a_clear_400(driver: AppDriver, body: Any, status: int, words: str) -> None:
    result = driver.request("POST", "/fn/_/pub", auth=False, body=body)
    assert result.status_code == status, result.text
    assert words in detail(result)


def test_a_body_past_the_limit_is_413_before_it_is_read(tmp_path: Path) -> None:
    small = open_driver(tmp_path, max_request_bytes=1024)
    try:
        create(small, "pub", build.wat("fl_hello"), {"public": True})
        result = small.request("POST", "/fn/_/pub", auth=False, body='{"x": "' + "a" * 2000 + '"}')
        assert result.status_code == 413
        assert "exceeds the limit of 1024" in detail(result)
    finally:
        small.close()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/fn/_/pub", 405),
        ("DELETE", "/fn/_/pub", 405),
        ("POST", "/fn/_", 404),
        ("POST", "/fn/_/pub/x", 404),
        ("POST", "/fn//pub", 404),
        ("POST", "/fn/_/pub%0A", 404),
        ("POST", "/fn/_/" + "a" * 161, 404),
    ],
)
def test_other_methods_and_shapes(driver: AppDriver, method: str, path: str, status: int) -> None:
    result = driver.request(method, path, auth=False)
    assert result.status_code == status, result.text
    assert detail(result)


def test_a_post_takes_no_query_parameters(driver: AppDriver) -> None:
    result = driver.request("POST", "/fn/_/pub", auth=False, query_string="retries=2")
    assert result.status_code == 400
    assert "unknown query parameter 'retries'" in detail(result)


# -- its rate limit ---------------------------------------------------------------


def test_the_limit_is_per_address_and_not_fooled_by_forwarded_for(tmp_path: Path) -> None:
    limited = open_driver(tmp_path, public_rate_per_s=0.001, public_rate_burst=2)
    try:
        create(limited, "pub", build.wat("fl_hello"), {"public": True})

        def call(address: str, **kwargs: Any) -> Any:
            return limited.request("POST", "/fn/_/pub", remote_addr=address, **kwargs)

        assert [call("10.0.0.1", auth=False).status_code for _ in range(2)] == [200, 200]
        over = call("10.0.0.1", auth=False)
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1
        assert "10.0.0.1 is over the public trigger's rate limit" in detail(over)
        # A header the caller writes is not an address it has.
        spoofed = call("10.0.0.1", auth=False, headers={"X-Forwarded-For": "10.9.9.9"})
        assert spoofed.status_code == 429
        # Another address has its own bucket; one /64 is one bucket.
        assert call("10.0.0.2", auth=False).status_code == 200
        assert [call(f"2001:db8::{i}", auth=False).status_code for i in (1, 2, 3)] == [
            200,
            200,
            429,
        ]
        # A non-public function costs the same: probing names is limited too.
        assert call("10.0.0.3", auth=False, body="{}").status_code == 200
        limited.request("POST", "/fn/_/nothing", auth=False, remote_addr="10.0.0.3")
        assert call("10.0.0.3", auth=False).status_code == 429
        # A key is counted by its own limit (off here), not by its address.
        assert call("10.0.0.1").status_code == 200
    finally:
        limited.close()


def test_client_addresses() -> None:
    assert client_address("192.0.2.7") == "192.0.2.7"
    assert client_address("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_address("x" * 100) == "x" * 64


def test_the_buckets_kept_are_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, most=3)
    for address in ("a", "b", "c"):
        assert limiter.wait(address, 0.0) == 0
    assert limiter.wait("a", 0.0) > 0  # a is now the most recently used
    assert limiter.wait("d", 0.0) == 0  # b, the least recently used, goes
    assert set(limiter._buckets) == {"c", "a", "d"}
    assert limiter.wait("a", 0.0) > 0


def test_the_apps_defaults_are_the_settings_defaults() -> None:
    assert (
        ApiSettings.public_rate_per_s,
        ApiSettings.public_rate_burst,
    ) == (PUBLIC_RATE_PER_S, PUBLIC_RATE_BURST)


# -- what one address may hold at once ----------------------------------------------


class HeldCalls:
    """A stand-in for the trigger whose calls run until the test lets them end."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()

    async def respond(self, req: Any, resp: Any, module: str, name: str) -> None:
        self.started += 1
        await self.release.wait()
        resp.media = {"ran": name}


def test_one_address_has_at_most_a_few_calls_running(tmp_path: Path) -> None:
    calls = HeldCalls()
    gate = PublicGate(calls, AuthMiddleware(lambda key: None), RateLimiter(0, 1))  # type: ignore[arg-type]
    app = falcon.asgi.App(middleware=[gate])
    _errors.install(app)

    async def until(check: Callable[[], bool]) -> None:
        # Turns of the loop, not time: the calls start as soon as they are scheduled.
        for _ in range(10_000):
            if check():
                return
            await asyncio.sleep(0)
        raise AssertionError("nothing happened")

    async def exchange() -> list[int]:
        statuses = []
        async with falcon.testing.ASGIConductor(app) as conductor:

            def call(address: str) -> Any:
                return asyncio.ensure_future(
                    conductor.simulate_post("/fn/_/slow", remote_addr=address)
                )

            held = [call("10.1.1.1") for _ in range(MOST_RUNNING)]
            await until(lambda: calls.started == MOST_RUNNING)
            refused = call("10.1.1.1")
            # Answered at once, or (were there no cap) running with the others.
            await until(lambda: refused.done() or calls.started > MOST_RUNNING)
            assert refused.done(), "a call past the cap was let through"
            over = refused.result()
            assert "calls of the public trigger running" in over.json["errors"]["detail"]
            other = call("10.1.1.2")  # another address is not held up
            await until(lambda: calls.started == MOST_RUNNING + 1)
            calls.release.set()
            done = [r.status_code for r in await asyncio.gather(*held, other)]
            # Ended calls free their places.
            again = await call("10.1.1.1")
            statuses = [over.status_code, *done, again.status_code]
        return statuses

    statuses = asyncio.run(exchange())
    assert statuses == [429] + [200] * (MOST_RUNNING + 1) + [200]


def test_bodies_without_a_key_have_their_own_share_of_the_budget(tmp_path: Path) -> None:
    share = 512 * 1024
    opened = open_driver(tmp_path, max_body_bytes_in_flight=PUBLIC_BUDGET_SHARE * share)
    try:
        create(opened, "pub", build.wat("fl_hello"), {"public": True})
        trigger = opened.app._router.find("/fn/_/pub")[0]
        assert trigger._public_budget.total == share
        # As if bodies without a key held all of their share now.
        trigger._public_budget.free = 0
        body = '{"x": "' + "a" * 100_000 + '"}'
        anonymous = opened.request("POST", "/fn/_/pub", auth=False, body=body)
        assert anonymous.status_code == 503
        assert "api.max_body_bytes_in_flight" in detail(anonymous)
        # A key's body is not held up by them.
        assert opened.request("POST", "/fn/_/pub", body=body).status_code == 200
        assert (
            opened.request("POST", "/v1/fn/_/pub", body='{"args": ' + body + "}").status_code == 200
        )
        trigger._public_budget.free = share
        assert opened.request("POST", "/fn/_/pub", auth=False, body=body).status_code == 200
    finally:
        opened.close()
