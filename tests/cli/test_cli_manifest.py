"""``fless.toml`` parsing and the deploy plan, without a server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from fless.cli._bindings import parse_event, parse_sink
from fless.cli._deploy import Wanted, differences, plan, stored_form
from fless.cli._manifest import (
    ManifestError,
    find_manifest,
    load_manifest,
    parse_manifest,
    starter_manifest,
)
from fless.core._records import _without_secrets
from fless.events import _specs

WASM = b"\0asm\x01\0\0\0"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hello").mkdir()
    (tmp_path / "echo.wasm").write_bytes(WASM)
    return tmp_path


def parse(project: Path, text: str) -> Any:
    return parse_manifest(text, project / "fless.toml")


def test_a_full_manifest(project: Path) -> None:
    manifest = parse(
        project,
        """
module = "demo"
[functions.hello]
source = "hello"
memory = 32
timeout = 5000
allow = ["api.example.org"]
events = ["cron:*/5 * * * *", {type = "cron", params = {schedule = "0 8 * * *"}}]
sinks = ["https://hooks.example.org/in"]
tag = "camera"
app = "edge"
public = true
secrets = ["TOKEN"]

[functions.echo]
source = "echo.wasm"
module = "_"
""",
    )
    hello, echo = manifest.functions
    assert (hello.name, hello.module, hello.source) == ("hello", "demo", project / "hello")
    assert hello.built and not echo.built
    assert (hello.memory, hello.timeout, hello.allow) == (32, 5000, ("api.example.org",))
    assert hello.events[0] == {"type": "cron", "params": {"schedule": "*/5 * * * *"}}
    assert hello.events[1]["params"] == {"schedule": "0 8 * * *"}
    assert hello.sinks == ({"type": "http", "params": {"url": "https://hooks.example.org/in"}},)
    assert (hello.tag, hello.app, hello.public, hello.secrets) == (
        "camera",
        "edge",
        True,
        ("TOKEN",),
    )
    assert (echo.public, echo.secrets) == (False, ())
    assert (echo.module, echo.memory, echo.events, echo.tag) == ("_", None, (), None)
    assert manifest.modules == ["demo", "_"]


BAD = [
    ("functions = 3", "declares no functions"),
    ("[functions]", "declares no functions"),
    ('modul = "x"\n[functions.a]\nsource = "hello"', "fless.toml: modul: unknown key 'modul'"),
    ('module = "a b"\n[functions.a]\nsource = "hello"', "fless.toml: module: 'a b' is not a name"),
    ("[functions.a]\nmemory = 3", "function a: source: missing"),
    ('[functions.a]\nsource = "nope"', "function a: source: nope: not a directory"),
    ('[functions.a]\nsource = "nope.wasm"', "function a: source: nope.wasm: no such .wasm"),
    ('[functions.a]\nsource = "hello"\nmemroy = 3', "function a: memroy: unknown key 'memroy'"),
    ('[functions.a]\nsource = "hello"\nmemory = "big"', "function a: memory: must be a positive"),
    ('[functions.a]\nsource = "hello"\nmemory = 0', "function a: memory: must be a positive"),
    ('[functions.a]\nsource = "hello"\nmemory = true', "function a: memory: must be a positive"),
    ('[functions.a]\nsource = "hello"\ntimeout = 1.5', "function a: timeout: must be a positive"),
    ('[functions.a]\nsource = "hello"\nallow = "x.org"', "function a: allow: must be a list"),
    ('[functions.a]\nsource = "hello"\nallow = ["http://x/"]', "function a: allow[1]: 'http"),
    ('[functions.a]\nsource = "hello"\nevents = "cron:* * * * *"', "function a: events: must be"),
    (
        '[functions.a]\nsource = "hello"\nevents = ["cron:* * *"]',
        "function a: events[1]: 'cron:* * *': expected five fields",
    ),
    (
        '[functions.a]\nsource = "hello"\nevents = ["cron:* * * * *", "kafka://x"]',
        "function a: events[2]: 'kafka://x': expected mqtt://",
    ),
    (
        '[functions.a]\nsource = "hello"\nsinks = ["mqtt://u:pw@b/t/#"]',
        "function a: sinks[1]: 'mqtt://u:***@b/t/#'",  # the password is not shown
    ),
    ('[functions.a]\nsource = "hello"\nsinks = [{type = "http"}]', "function a: sinks[1]: an"),
    ('[functions.a]\nsource = "hello"\nsinks = [3]', "function a: sinks[1]: must be a spec"),
    ('[functions.a]\nsource = "hello"\ntag = ""', "function a: tag: must be a string of 1"),
    (f'[functions.a]\nsource = "hello"\ntag = "{"t" * 65}"', "function a: tag: must be"),
    ('[functions.a]\nsource = "hello"\napp = "no/slash"', "function a: app: 'no/slash' is not"),
    ('[functions."a-b"]\nsource = "hello"', "function a-b: name: 'a-b' is not a name"),
    ('[functions.a]\nsource = "hello"\nname = "x\\n"', "function a: name: 'x\\n' is not a name"),
    (
        '[functions.a]\nsource = "hello"\n[functions.b]\nsource = "hello"\nname = "a"',
        "function b: name: _/a is declared by a too",
    ),
    ('[functions.a]\nsource = "hello"\nlang = 3', "function a: lang: must be a non-empty"),
    ('[functions.a]\nsource = "hello"\npublic = "yes"', "function a: public: must be true or"),
    ('[functions.a]\nsource = "hello"\nsecrets = "T"', "function a: secrets: must be a list"),
    ('[functions.a]\nsource = "hello"\nsecrets = ["A", "b c"]', "function a: secrets[2]: 'b c'"),
    ("functions.a = 3", "function a: must be a table"),
    ("[functions.a\n", "fless.toml: not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_manifest_names_the_file_the_function_and_the_field(
    project: Path, text: str, message: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        parse(project, text)
    assert str(caught.value).startswith(str(project / "fless.toml") + ": ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_finding_and_reading_the_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    with pytest.raises(ManifestError, match=r"fless.toml: no such file; write one"):
        find_manifest(None)
    with pytest.raises(ManifestError, match=r"other.toml: no such file$"):
        find_manifest("other.toml")
    (project / "fless.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ManifestError, match="cannot read it"):
        load_manifest(find_manifest(str(project)))  # a directory means its fless.toml


def test_the_starter_manifest_of_fn_new_parses(project: Path) -> None:
    (project / "hello" / "fless.toml").write_text(starter_manifest("hello"))
    [function] = load_manifest(project / "hello" / "fless.toml").functions
    assert (function.name, function.module, function.source) == ("hello", "_", project / "hello")


# The CLI's idea of a kept binding must be the cluster's, or a second deploy
# would update what did not change.
SPECS = [
    (parse_event, "cron:*/5 * * * *"),
    (parse_event, 'cron:0 8 * * *@Europe/Rome|{"room": "hall"}'),
    (parse_event, "mqtt://broker.lan/sensors/+/temp"),
    (parse_event, "mqtts://alice:s3cret@broker.lan:8884/s/#?topic_key=_topic"),
    (parse_event, '{"type": "mqtt", "params": {"host": " b ", "port": "1884", "topic": "t"}}'),
    (parse_sink, "couchdb+http://fless:pw@db.lan:5984/readings"),
    (parse_sink, "https://hooks.example.org/in"),
    (parse_sink, "mqtt://b.lan/out"),
    (parse_sink, '{"type": "http", "params": {"url": "http://h/x", "headers": {"A": "b"}}}'),
    (
        parse_sink,
        '{"type": "couchdb", "params": {"url": "http://d/x", "password": {"secret": "db"}}}',
    ),
]


@pytest.mark.parametrize(("parse_spec", "spec"), SPECS)
def test_a_binding_compares_as_the_cluster_keeps_it(parse_spec: Any, spec: str) -> None:
    entry = parse_spec(spec)
    server_parse = _specs.parse_event if parse_spec is parse_event else _specs.parse_sink
    kept = _without_secrets(_specs.stored(server_parse(entry)))
    assert stored_form(entry) == kept


def function(**fields: Any) -> dict[str, Any]:
    described = {
        "hash": hashlib.sha256(WASM).hexdigest(),
        "memory": 64,
        "timeout": 10000,
        "http_allow": [],
        "tag": None,
        "app": None,
        "events": [],
        "sinks": [],
    }
    return {**described, **fields}


def test_plan_create_update_unchanged_and_prune() -> None:
    cron = parse_event("cron:*/5 * * * *")
    wanted = [
        Wanted("m", "new", WASM),
        Wanted("m", "same", WASM, {"memory": 64, "events": [cron], "http_allow": []}),
        Wanted("m", "code", WASM + b"\0"),
        Wanted("m", "limits", WASM, {"memory": 32, "timeout": None}),
        Wanted("m", "place", WASM, {"tag": "camera", "app": None, "events": []}),
    ]
    current = {
        ("m", "same"): function(events=[_without_secrets(_specs.stored(_specs.parse_event(cron)))]),
        ("m", "code"): function(),
        ("m", "limits"): function(),
        ("m", "place"): function(app="edge", events=[{"type": "cron", "params": {}}]),
        ("m", "gone"): function(),
        ("other", "kept"): function(),
    }
    steps = plan(wanted, current, prune=["m"])
    assert [(s.action, s.name, s.changes) for s in steps] == [
        ("create", "new", ()),
        ("unchanged", "same", ()),
        ("update", "code", ("code",)),
        ("update", "limits", ("memory 64 -> 32 MiB",)),
        ("update", "place", ("tag (none) -> camera", "app edge -> (none)", "events")),
        ("delete", "gone", ()),
    ]
    assert [s.action for s in plan(wanted, current)].count("delete") == 0
    forced = plan(wanted, current, force=True)
    assert [s.changes for s in forced if s.name == "same"] == [("forced",)]
    assert steps[3].describe() == "update     m/limits (memory 64 -> 32 MiB)"


def test_what_is_not_managed_is_no_difference() -> None:
    # fn deploy without --memory keeps the memory the function has.
    assert differences(Wanted("m", "f", WASM, {"memory": None}), function(memory=128)) == []
    assert differences(Wanted("m", "f", WASM), function(events=[{"type": "cron"}])) == []
    assert (
        differences(
            Wanted("m", "f", WASM, {"http_allow": ["b", "a"]}), function(http_allow=["a", "b"])
        )
        == []
    )
