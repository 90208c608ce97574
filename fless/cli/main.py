"""``fless``: manage modules, functions and users of a fless cluster over its REST API.

Commands follow FunLess's ``fl-cli``: ``fless mod ...``, ``fless fn ...``,
``fless admin user ...`` and ``fless cfg ...``; ``fless fn new|build|create``
write and build function projects with the language SDKs (``_langs``,
``_project``). Results are printed as JSON on
stdout so scripts can parse them; an error is one line on stderr and exit
status 1 (2 for a usage error). A create or update whose events or sinks
partly failed, and an invocation that failed, also exit with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from fless import __version__
from fless.cli._args import (
    invocation_args,
    parse_assignment,
    parse_json_object,
    positive_int,
    read_key_file,
    read_wasm,
)
from fless.cli._bindings import (
    EVENT_SYNTAX,
    SINK_SYNTAX,
    add_headers,
    failures,
    parse_event,
    parse_header,
    parse_sink,
)
from fless.cli._config import ALIASES, SETTINGS, write_setting
from fless.cli._deploy import Step, Wanted, apply, functions_of, plan
from fless.cli._langs import language, languages, sdk_root
from fless.cli._manifest import (
    MANIFEST_NAME,
    Declared,
    find_manifest,
    is_name,
    load_manifest,
    starter_manifest,
)
from fless.cli._output import (
    add_output_option,
    completion_script,
    function_text,
    output_format,
    progress_bar,
    show,
)
from fless.cli._project import build_project, default_output, find_project, new_project
from fless.cli._secrets import add_commands as add_secret_commands
from fless.cli._toolchain import check_all
from fless.cli._toolchain import install as install_toolchain
from fless.cli._toolchain import show as show_toolchains
from fless.client import (
    Client,
    FlessError,
    normalize_url,
    read_config,
    resolve_settings,
    tls_context,
)

# A command returns its exit status, or None for 0.
Command = Callable[[argparse.Namespace], int | None]

_HINTS = {
    401: "set a key with `fless cfg set key KEY`, FLESS_KEY, --key or --key-file",
    403: "this needs the admin key",
    404: "see what exists with `fless mod list` and `fless fn list -m MODULE`",
}


# -- helpers --------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.cmd_parser
    parser.error(message)  # exits with status 2


def resolve(args: argparse.Namespace) -> tuple[str, str | None]:
    """The server and key to use: flag > FLESS_URL/FLESS_KEY > config file > default.

    Args:
        args: the parsed command line (``--url``, ``--key``, ``--key-file``).

    Returns:
        ``(url, key)``; the key is None when none is set anywhere.
    """
    url = getattr(args, "url", None)
    key = getattr(args, "key", None)
    key_file = getattr(args, "key_file", None)
    if key and key_file:
        _usage_error(args, "give --key or --key-file, not both")
    if key_file:
        key = read_key_file(key_file)
    return resolve_settings(url, key)


def _client(args: argparse.Namespace) -> Client:
    url, key = resolve(args)
    return Client(url, key, ssl_context=tls_context(getattr(args, "cacert", None)))


def _key_source(args: argparse.Namespace) -> str:
    """Where the key in use came from: ``flag``, ``file``, ``env`` or ``config``."""
    if getattr(args, "key", None):
        return "flag"
    if getattr(args, "key_file", None):
        return "file"
    if os.environ.get("FLESS_KEY"):
        return "env"
    return "config" if read_config().get("key") else "none"


# -- commands -------------------------------------------------------------------------


def _mod_list(args: argparse.Namespace) -> None:
    with _client(args) as client:
        show(client.list_modules(), output_format(args), "modules")


def _mod_get(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_json(client.get_module(args.name))


def _mod_create(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_json(client.create_module(args.name))


def _mod_update(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_json(client.rename_module(args.name, args.new_name))


def _mod_delete(args: argparse.Namespace) -> None:
    with _client(args) as client:
        client.delete_module(args.name)


def _check_hosts(args: argparse.Namespace) -> None:
    # `--allow a.com f.wasm` would take the file for a host: say so instead.
    for host in args.allow or []:
        if host.endswith(".wasm"):
            _usage_error(args, f"--allow takes host names, not {host!r}; put FILE before --allow")


def _fn_list(args: argparse.Namespace) -> None:
    with _client(args) as client:
        show(client.list_functions(args.module), output_format(args), "functions")


def _check_bindings(args: argparse.Namespace) -> None:
    try:
        add_headers(args.sinks or [], args.sink_headers or [])
    except argparse.ArgumentTypeError as exc:
        _usage_error(args, str(exc))


def _report(answer: dict[str, Any]) -> int:
    """Prints a create or update answer, and the events and sinks that failed on stderr."""
    _print_json(answer)
    failed = failures(answer)
    for line in failed:
        print(f"fless: {line}", file=sys.stderr)
    return 1 if failed else 0


def _upload(args: argparse.Namespace, code: bytes) -> int:
    """Creates function ``args.name`` from ``code`` with the command's settings."""
    with _client(args) as client:
        try:
            created = client.create_function(
                args.module,
                args.name,
                code,
                memory=args.memory,
                timeout=args.timeout,
                http_allow=args.allow,
                events=args.events,
                sinks=args.sinks,
                wait_for_workers=not args.no_wait,
                progress=progress_bar(f"uploading {args.name}"),
                public=args.public,
                secrets=args.secret,
            )
        except FlessError as exc:
            raise _name_taken(exc, args.module, args.name) from None
    return _report(created)


def _name_taken(exc: FlessError, module: str, name: str) -> FlessError:
    """A create's 409, with the commands that change the function instead."""
    if exc.status != 409:
        return exc
    where = f"{name}" if module == "_" else f"{name} -m {module}"
    return FlessError(
        409,
        f"{exc.detail}; change it with `fless fn update {where} FILE.wasm`, or build and "
        f"create or update it with `fless fn deploy DIR`",
    )


def _fn_upload(args: argparse.Namespace) -> int:
    _check_hosts(args)
    _check_bindings(args)
    return _upload(args, read_wasm(args.file))


def _fn_get(args: argparse.Namespace) -> None:
    with _client(args) as client:
        function = client.get_function(args.module, args.name)
    if output_format(args) == "table":
        print(function_text(function), end="")
    else:
        _print_json(function)


def _fn_update(args: argparse.Namespace) -> int:
    _check_hosts(args)
    _check_bindings(args)
    changes = (args.file, args.memory, args.timeout, args.allow, args.rename, args.events)
    more = (args.sinks, args.no_events or None, args.no_sinks or None, args.public, args.secret)
    if all(change is None for change in changes + more):
        _usage_error(
            args,
            "nothing to update: give FILE, --memory, --timeout, --allow, --rename, "
            "--event, --sink, --no-events, --no-sinks, --public/--no-public or --secret",
        )
    code = read_wasm(args.file) if args.file is not None else None
    with _client(args) as client:
        updated = client.update_function(
            args.module,
            args.name,
            code,
            memory=args.memory,
            timeout=args.timeout,
            http_allow=args.allow,
            new_name=args.rename,
            events=args.events,
            sinks=args.sinks,
            clear_events=args.no_events,
            clear_sinks=args.no_sinks,
            wait_for_workers=not args.no_wait,
            public=args.public,
            secrets=args.secret,
        )
    return _report(updated)


def _fn_delete(args: argparse.Namespace) -> None:
    with _client(args) as client:
        client.delete_function(args.module, args.name)


def _fn_invoke(args: argparse.Namespace) -> None:
    payload = invocation_args(args.assignments, args.json)
    if args.run_async and args.app is not None:
        _usage_error(args, "--app places a call as it runs: it does not go with --async")
    with _client(args) as client:
        if not args.run_async:
            _print_json(client.invoke(args.module, args.name, payload, args.app))
            return
        ident = client.invoke_async(args.module, args.name, payload)
    if output_format(args) == "json":
        _print_json({"id": ident})
    else:
        print(ident)


# Polling an invocation: the first look soon, then less often.
POLL_FIRST = 0.1
POLL_MAX = 1.0


def _inv_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        invocation = client.get_invocation(args.id)
        if not args.wait:
            _print_json(invocation)
            return 0
        deadline = time.monotonic() + args.wait_timeout
        delay = POLL_FIRST
        while invocation.get("state") not in ("ok", "error"):
            left = deadline - time.monotonic()
            if left <= 0:
                print(
                    f"fless: invocation {args.id} is still {invocation.get('state')} "
                    f"after {args.wait_timeout:g} s",
                    file=sys.stderr,
                )
                return 2
            time.sleep(min(delay, left))
            delay = min(delay * 2, POLL_MAX)
            invocation = client.get_invocation(args.id)
    if invocation["state"] == "ok":
        _print_json(invocation.get("result"))
        return 0
    error = invocation.get("error")
    if isinstance(error, dict):
        print(f"fless: {error.get('kind', 'error')}: {error.get('message', '')}", file=sys.stderr)
    else:
        print(f"fless: invocation {args.id} failed: {error}", file=sys.stderr)
    return 1


def _build(args: argparse.Namespace) -> Path:
    project = find_project(Path(args.dir), args.lang)
    lang = project.lang
    output = (
        Path(args.wasm_out)
        if args.wasm_out
        else default_output(lang, project.directory, project.entry)
    )
    built = build_project(
        lang, project.directory, output, verbose=args.verbose, entry=project.entry
    )
    print(
        f"fless: built {built.output} ({built.size} bytes, {lang.name}, {built.seconds:.1f} s)",
        file=sys.stderr,
    )
    return built.output


def _fn_new(args: argparse.Namespace) -> None:
    lang = language(args.lang)
    dest = Path(args.dir) if args.dir else Path(args.name)
    new_project(lang, args.name, dest)
    manifest = dest / MANIFEST_NAME
    if not manifest.exists():  # a template may bring its own
        manifest.write_text(starter_manifest(args.name))
    print(
        f"fless: wrote a {lang.name} function in {dest}; build and upload it with "
        f"`fless fn deploy {dest}`, or `fless deploy` in {dest} ({MANIFEST_NAME})",
        file=sys.stderr,
    )


def _fn_build(args: argparse.Namespace) -> None:
    print(_build(args))


def _fn_create(args: argparse.Namespace) -> int:
    _check_hosts(args)
    _check_bindings(args)
    # A built module is taken as it is, as fn deploy takes one.
    built = args.dir if args.dir.endswith(".wasm") else str(_build(args))
    return _upload(args, read_wasm(built))


# A step as done, for people: "created _/hello".
_DONE = {"create": "created", "update": "updated", "unchanged": "unchanged", "delete": "deleted"}


def _code_of(args: argparse.Namespace, source: Path, lang: str | None) -> bytes:
    """A ``.wasm`` file's bytes, or a project's, built as ``fn build`` builds it."""
    if source.suffix == ".wasm":
        return read_wasm(str(source))
    built = argparse.Namespace(dir=str(source), lang=lang, wasm_out=None, verbose=args.verbose)
    return read_wasm(str(_build(built)))


def _fn_deploy(args: argparse.Namespace) -> int:
    _check_hosts(args)
    _check_bindings(args)
    source = Path(args.dir)
    if not source.exists():
        raise FlessError(0, f"{source}: no such file or directory")
    # A file (hello.wasm, greet.js) names the function by its stem; a project
    # directory by its own name.
    name = args.name or (source.stem if source.is_file() else source.resolve().name)
    if not is_name(name):
        _usage_error(args, f"{name!r} is not a function name (letters, digits, _): give --name")
    settings: dict[str, Any] = {"memory": args.memory, "timeout": args.timeout}
    # What is not given is kept as it is, as for `fn update`.
    given = (
        ("http_allow", args.allow),
        ("events", args.events),
        ("sinks", args.sinks),
        ("public", args.public),
        ("secrets", args.secret),
    )
    for key, value in given:
        if value is not None:
            settings[key] = value
    wanted = Wanted(args.module, name, _code_of(args, source, args.lang), settings)
    with _client(args) as client:
        current, missing = functions_of(client, [args.module])
        if missing:
            _make_module(client, args.module)
        [step] = plan([wanted], current)
        outcome = apply(client, [step], current, wait_for_workers=not args.no_wait)
    for line in outcome.failed_bindings:
        print(f"fless: {line}", file=sys.stderr)
    if output_format(args) == "json":
        _print_json({**step.public(), "action": _DONE[step.action]})
    else:
        print(f"{_DONE[step.action]} {step.module}/{step.name}" + _changes(step))
    return 1 if outcome.failed_bindings else 0


def _make_module(client: Client, module: str) -> None:
    try:
        client.create_module(module)
    except FlessError as exc:
        # 422: made by another deploy since we looked, which is as good (FunLess
        # answers a taken module name with 422, not 409).
        if exc.status != 422 or "already exists" not in exc.detail:
            raise


def _changes(step: Step) -> str:
    return f" ({', '.join(step.changes)})" if step.changes else ""


def _declared_settings(function: Declared) -> dict[str, Any]:
    # The lists and the placement are the whole truth: left out, they are none.
    return {
        "memory": function.memory,
        "timeout": function.timeout,
        "http_allow": list(function.allow),
        "events": list(function.events),
        "sinks": list(function.sinks),
        "tag": function.tag,
        "app": function.app,
        "public": function.public,
        "secrets": list(function.secrets),
    }


def _deploy(args: argparse.Namespace) -> int:
    manifest = load_manifest(find_manifest(args.file))
    codes: dict[tuple[Path, str | None], bytes] = {}
    wanted = []
    for function in manifest.functions:
        # Two functions from one project build it once.
        built = (function.source, function.lang)
        if built not in codes:
            codes[built] = _code_of(args, function.source, function.lang)
        wanted.append(
            Wanted(function.module, function.name, codes[built], _declared_settings(function))
        )
    fmt = output_format(args)
    done: list[Step] = []
    with _client(args) as client:
        current, missing = functions_of(client, manifest.modules)
        steps = plan(wanted, current, manifest.modules if args.prune else (), force=args.force)
        if fmt != "json":
            _print_plan(manifest.path, missing, steps, args.dry_run)
        _warn_missing_scripts(client, manifest.functions)
        if args.dry_run:
            if fmt == "json":
                _print_json([step.public() for step in steps])
            return 0
        try:
            for module in missing:
                _make_module(client, module)
            outcome = apply(
                client,
                steps,
                current,
                force=args.force,
                wait_for_workers=not args.no_wait,
                report=lambda step: _applied(step, done, fmt),
            )
        finally:
            if fmt == "json":
                _print_json([{**s.public(), "done": s in done} for s in steps])
    for line in outcome.failed_bindings:
        print(f"fless: {line}", file=sys.stderr)
    if fmt != "json":
        counts = {action: sum(s.action == action for s in steps) for action in _DONE}
        print(f"{manifest.path}: " + ", ".join(f"{n} {_DONE[a]}" for a, n in counts.items() if n))
    return 1 if outcome.failed_bindings else 0


def _warn_missing_scripts(client: Client, functions: tuple[Declared, ...]) -> None:
    # The API takes a script's name before the script exists (APP.md), and
    # then every call fails: say so while it is cheap to fix.
    named = [f for f in functions if f.app]
    if not named:
        return
    scripts = {str(s.get("name")) for s in client.list_app_scripts()}
    for function in named:
        if function.app not in scripts:
            print(
                f"fless: warning: {function.module}/{function.name} is placed by APP script "
                f"{function.app}, which does not exist: its calls fail until "
                f"`fless app create {function.app} FILE.yaml`",
                file=sys.stderr,
            )


def _print_plan(path: Path, missing: list[str], steps: list[Step], dry_run: bool) -> None:
    print(f"plan for {path}" + (" (dry run: nothing is changed)" if dry_run else "") + ":")
    for module in missing:
        print(f"  {'create':<9}  module {module}")
    for step in steps:
        print(f"  {step.describe()}")
    sys.stdout.flush()


def _applied(step: Step, done: list[Step], fmt: str) -> None:
    done.append(step)
    if fmt != "json" and step.action != "unchanged":
        print(f"{_DONE[step.action]} {step.module}/{step.name}", flush=True)


def _print_log_entry(entry: dict[str, Any]) -> None:
    print(f"{entry['started']}  {entry['id']}  {entry['worker']}  {entry['outcome']}")
    for line in entry.get("logs", []):
        print(f"    {line}")
    if entry.get("error"):
        print(f"    error: {entry['error']}")


def _fn_logs(args: argparse.Namespace) -> int | None:
    with _client(args) as client:
        entries = client.function_logs(args.module, args.name, args.limit)
        if args.follow:
            return _follow_logs(client, args, entries)
    if output_format(args) == "table" and args.full:
        for entry in entries:
            _print_log_entry(entry)
        return None
    show(entries, output_format(args), "logs")
    return None


# How often `fn logs --follow` asks, and how many invocations it remembers
# having printed (the API answers at most 200, so more never come back).
FOLLOW_EVERY = 1.0
FOLLOW_MEMORY = 1000


def _follow_logs(client: Client, args: argparse.Namespace, entries: list[dict[str, Any]]) -> int:
    """Prints ``entries`` and then each new invocation's, oldest first, until Ctrl-C."""
    fmt = output_format(args)
    printed: dict[str, None] = {}  # insertion-ordered, to forget the oldest
    lost: list[str] = []  # why the server is out of reach, while it is
    try:
        while True:
            fresh = [e for e in entries if e.get("id") not in printed]
            for entry in sorted(fresh, key=lambda e: str(e.get("started"))):
                if fmt == "json":
                    print(json.dumps(entry, ensure_ascii=False))
                else:
                    _print_log_entry(entry)
                printed[str(entry.get("id"))] = None
                if len(printed) > FOLLOW_MEMORY:
                    del printed[next(iter(printed))]
            sys.stdout.flush()
            time.sleep(FOLLOW_EVERY)
            entries = _poll_logs(client, args, lost)
    except KeyboardInterrupt:
        return 0


def _poll_logs(client: Client, args: argparse.Namespace, lost: list[str]) -> list[dict[str, Any]]:
    """The latest logs; ``[]`` while the server is out of reach (a restart), said once."""
    try:
        entries = client.function_logs(args.module, args.name, 200)
    except FlessError as exc:
        if exc.status not in (0, 502, 503, 504):
            raise  # the function is gone, the key revoked: following is over
        if not lost:
            print(f"fless: {exc}; still trying (Ctrl-C stops)", file=sys.stderr, flush=True)
        lost[:] = [str(exc)]
        return []
    if lost:
        print("fless: the server answers again", file=sys.stderr, flush=True)
        lost.clear()
    return entries


def _fn_recent(args: argparse.Namespace) -> None:
    with _client(args) as client:
        show(client.recent_invocations(args.limit), output_format(args), "invocations")


def _completion(args: argparse.Namespace) -> None:
    print(completion_script(build_parser()), end="")


def _fn_langs(args: argparse.Namespace) -> None:
    show_toolchains(check_all(list(languages().values())), output_format(args))


def _add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", dest="output", action="store_const", const="json", help="same as --output json"
    )


def _toolchain_install(args: argparse.Namespace) -> None:
    if args.all == bool(args.langs):
        args.cmd_parser.error("name the languages, or give --all")
    chosen = list(languages().values()) if args.all else [language(x) for x in args.langs]
    if not chosen:
        raise FlessError(0, f"there is no language SDK in {sdk_root()}")
    for lang in chosen:
        install_toolchain(lang)


def _user_create(args: argparse.Namespace) -> None:
    with _client(args) as client:
        print(client.create_subject(args.name))


def _user_revoke(args: argparse.Namespace) -> None:
    with _client(args) as client:
        client.revoke_subject(args.name)


def _key_rotate(args: argparse.Namespace) -> None:
    source = _key_source(args)
    with _client(args) as client:
        key = client.rotate_admin_key()
    # The old key is dead now: keep the new one where the old one was read
    # from, or print it, since the server never shows it again.
    if source == "file":
        _save_key_file(Path(args.key_file), key)
        _print_json({"rotated": True, "saved_to": args.key_file})
    elif source == "config":
        try:
            saved = write_setting("key", key)
        except OSError as exc:
            print(key)
            raise FlessError(0, f"the new key is above; saving it failed: {exc}") from exc
        _print_json({"rotated": True, "saved_to": str(saved)})
    else:
        print(key)


def _save_key_file(path: Path, key: str) -> None:
    temp = path.with_name(f".{path.name}.new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.replace(temp, path)


def _user_list(args: argparse.Namespace) -> None:
    with _client(args) as client:
        show(client.list_subjects(), output_format(args), "users")


def _read_script(args: argparse.Namespace) -> bytes:
    try:
        return Path(args.file).read_bytes()
    except OSError as exc:
        raise FlessError(0, f"cannot read {args.file}: {exc.strerror or exc}") from exc


def _app_create(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_json(client.put_app_script(args.name, _read_script(args)))


def _app_update(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_json(client.put_app_script(args.name, _read_script(args), replace=True))


def _app_list(args: argparse.Namespace) -> None:
    with _client(args) as client:
        show(client.list_app_scripts(), output_format(args), "apps")


def _app_get(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_json(client.get_app_script(args.name))


def _app_delete(args: argparse.Namespace) -> None:
    with _client(args) as client:
        client.delete_app_script(args.name)


def _node_list(args: argparse.Namespace) -> None:
    with _client(args) as client:
        show(client.list_nodes(), output_format(args), "nodes")


def _node_join(args: argparse.Namespace) -> None:
    with _client(args) as client:
        client.join_node(args.address)


def _cfg_set(args: argparse.Namespace) -> None:
    if (args.value is None) == (args.from_file is None):
        _usage_error(args, "give the value, or --from-file FILE (- for standard input)")
    raw = args.value if args.value is not None else _read_value(args.from_file)
    setting = ALIASES.get(args.setting, args.setting)
    value = normalize_url(raw) if setting == "url" else raw.strip()
    if not value:
        _usage_error(args, f"the {args.setting} cannot be empty")
    try:
        path = write_setting(setting, value)
    except OSError as exc:
        raise FlessError(0, f"cannot save settings: {exc}") from exc
    shown = masked(value) if setting == "key" else value
    print(f"saved {setting} {shown} in {path}")


def _read_value(source: str) -> str:
    """A setting's value from a file, or from standard input for ``-``."""
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlessError(0, f"cannot read {source}: {exc}") from exc


def masked(key: str) -> str:
    """A key as it may be shown: its last four characters, enough to tell keys apart."""
    return "..." + key[-4:] if len(key) > 8 else "..."


def _cfg_get(args: argparse.Namespace) -> None:
    url, key = resolve(args)
    if args.setting is None:
        # The key only when asked by name (`cfg get key`): a screen or a
        # pasted terminal shows no more of it than this.
        _print_json({"url": url, "key": masked(key) if key is not None else None})
    elif ALIASES.get(args.setting, args.setting) == "url":
        print(url)
    elif key is None:
        raise FlessError(0, f"no key set; {_HINTS[401]}")
    else:
        print(key)


# -- the parser -----------------------------------------------------------------------


def _connection_options() -> argparse.ArgumentParser:
    # SUPPRESS lets the options go before or after the command without the
    # command's (unset) defaults overwriting values given before it.
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="the fless server (default: FLESS_URL, else the url setting: `fless cfg set url`)",
    )
    group.add_argument("--key", default=argparse.SUPPRESS, help="the API key")
    group.add_argument(
        "--key-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="read the API key from the first line of PATH (e.g. a node's admin.key)",
    )
    group.add_argument(
        "--cacert",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="trust the CA certificates in PATH for https (default: FLESS_CACERT, "
        "else the system's)",
    )
    add_output_option(group)
    return options


class _Builder:
    """Adds leaf commands that share the connection options and know their parser."""

    def __init__(self) -> None:
        self.options = _connection_options()

    def command(
        self,
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        run: Command,
        help_text: str,
    ) -> argparse.ArgumentParser:
        parser = group.add_parser(
            name, parents=[self.options], help=help_text, description=help_text
        )
        parser.set_defaults(run=run, cmd_parser=parser)
        return parser


def _add_module_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--module", default="_", help="the module (default: _)")


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory", type=positive_int, metavar="MIB", help="memory cap, MiB")
    parser.add_argument("--timeout", type=positive_int, metavar="MS", help="time limit, ms")
    parser.add_argument(
        "--allow",
        nargs="*",
        action="extend",
        metavar="HOST",
        help="hosts the function may reach over HTTP (put FILE before this option)",
    )


def _add_public_option(parser: argparse.ArgumentParser, *, update: bool) -> None:
    parser.add_argument(
        "--public",
        action=argparse.BooleanOptionalAction,
        help="let anyone run it without a key at /fn/MODULE/NAME, the raw JSON body as its "
        "args (docs/API.md)"
        + ("; --no-public: only with a key again" if update else " (default: not public)"),
    )


def _add_secret_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret",
        action="append",
        metavar="NAME",
        help="a secret of yours (fless secret set NAME) its environment holds; repeat for "
        "more (on update: the whole list)",
    )


def _add_no_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait", action="store_true", help="answer before the workers have the code"
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _add_binding_options(parser: argparse.ArgumentParser, *, update: bool) -> None:
    """Adds ``--event``, ``--sink`` and ``--sink-header`` (and ``--no-*`` for an update)."""
    what = "replace the function's events" if update else "run the function on an event"
    events = parser.add_mutually_exclusive_group() if update else parser
    events.add_argument(
        "--event",
        dest="events",
        metavar="SPEC",
        type=parse_event,
        action="append",
        help=f"{what} (repeat for more; SPEC below)",
    )
    sinks = parser.add_mutually_exclusive_group() if update else parser
    sinks.add_argument(
        "--sink",
        dest="sinks",
        metavar="SPEC",
        type=parse_sink,
        action="append",
        help="send each result there (repeat for more; SPEC below)"
        + ("; replaces the function's sinks" if update else ""),
    )
    parser.add_argument(
        "--sink-header",
        dest="sink_headers",
        metavar="'NAME: VALUE'",
        type=parse_header,
        action="append",
        help="a header for the http sinks of this command (repeat for more)",
    )
    if update:
        events.add_argument(
            "--no-events", action="store_true", help="remove all the function's events"
        )
        sinks.add_argument("--no-sinks", action="store_true", help="remove all its sinks")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    kept = "Without --event (--sink) the function keeps its events (sinks).\n" if update else ""
    parser.epilog = (
        f"--event SPEC:\n{EVENT_SYNTAX}\n\n--sink SPEC:\n{SINK_SYNTAX}\n\n{kept}"
        "Each event and sink is checked and connected by the server. When one fails, the\n"
        "function is still saved with the others, each failure is printed on stderr\n"
        "('fless: event 2: why') and the exit status is 1 (docs/EVENTS.md)."
    )


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", metavar="LANG", help="the language (default: from the files)")
    parser.add_argument(
        "-o",
        "--out",
        dest="wasm_out",
        metavar="FILE.wasm",
        help="where the module goes (default: in DIR)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the toolchain's output as it runs"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``fless`` command line.

    Returns:
        The parser; each command sets ``run`` to the function that carries it out.
    """
    build = _Builder()
    parser = argparse.ArgumentParser(
        prog="fless",
        description="Manage a fless cluster: modules, functions and users.",
        parents=[build.options],
    )
    parser.add_argument("--version", action="version", version=f"fless {__version__}")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mod = top.add_parser("mod", help="modules").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    build.command(mod, "list", _mod_list, "list the modules")
    build.command(mod, "get", _mod_get, "show a module and its functions").add_argument("name")
    build.command(mod, "create", _mod_create, "create a module").add_argument("name")
    update = build.command(mod, "update", _mod_update, "rename a module")
    update.add_argument("name")
    update.add_argument("new_name", metavar="NEW")
    build.command(mod, "delete", _mod_delete, "delete a module and its functions").add_argument(
        "name"
    )

    fn = top.add_parser("fn", help="functions").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    _add_module_option(build.command(fn, "list", _fn_list, "list a module's functions"))
    upload = build.command(fn, "upload", _fn_upload, "upload a new function")
    upload.add_argument("name")
    upload.add_argument("file", metavar="FILE.wasm")
    _add_module_option(upload)
    _add_limit_options(upload)
    _add_binding_options(upload, update=False)
    _add_public_option(upload, update=False)
    _add_secret_option(upload)
    _add_no_wait_option(upload)
    get = build.command(
        fn, "get", _fn_get, "show a function: a summary on a terminal, JSON in a pipe"
    )
    get.add_argument("name")
    _add_module_option(get)
    get.add_argument(
        "--json", dest="output", action="store_const", const="json", help="same as --output json"
    )
    change = build.command(fn, "update", _fn_update, "change a function's code or settings")
    change.add_argument("name")
    change.add_argument("file", metavar="FILE.wasm", nargs="?")
    _add_module_option(change)
    _add_limit_options(change)
    change.add_argument("--rename", metavar="NEW", help="a new name for the function")
    _add_binding_options(change, update=True)
    _add_public_option(change, update=True)
    _add_secret_option(change)
    _add_no_wait_option(change)
    delete = build.command(fn, "delete", _fn_delete, "delete a function")
    delete.add_argument("name")
    _add_module_option(delete)
    invoke = build.command(fn, "invoke", _fn_invoke, "run a function and print its output")
    invoke.add_argument("name")
    _add_module_option(invoke)
    invoke.add_argument(
        "-a",
        "--arg",
        dest="assignments",
        metavar="KEY=VALUE",
        type=parse_assignment,
        action="append",
        help="an argument (repeat for more); VALUE is JSON when it parses as JSON, else a string",
    )
    invoke.add_argument(
        "-j",
        "--json",
        metavar="JSON",
        type=parse_json_object,
        help="the arguments as a JSON object, @FILE for a file's, - for standard input's;"
        " its keys override -a",
    )
    invoke.add_argument(
        "--async",
        dest="run_async",
        action="store_true",
        help="queue the run and print its id at once; see it with `fless inv get ID`",
    )
    invoke.add_argument(
        "--app",
        metavar="SCRIPT",
        help="place the call by this APP script (see `fless app`; docs/APP.md)",
    )

    new = build.command(fn, "new", _fn_new, "write a function project from a language template")
    new.add_argument("name")
    new.add_argument("--lang", required=True, metavar="LANG", help="the language (see fn langs)")
    new.add_argument("--dir", metavar="DIR", help="the project directory (default: ./NAME)")
    compile_ = build.command(fn, "build", _fn_build, "build a function project to .wasm")
    compile_.add_argument("dir", metavar="DIR", nargs="?", default=".")
    _add_build_options(compile_)
    create = build.command(
        fn, "create", _fn_create, "build a function project (or take a .wasm) and upload it"
    )
    create.add_argument("name")
    create.add_argument("dir", metavar="DIR", help="the project, or a built FILE.wasm")
    _add_build_options(create)
    _add_module_option(create)
    _add_limit_options(create)
    _add_binding_options(create, update=False)
    _add_public_option(create, update=False)
    _add_secret_option(create)
    _add_no_wait_option(create)
    deploy_fn = build.command(
        fn,
        "deploy",
        _fn_deploy,
        "build a project (or take a .wasm) and create the function, or update it when it "
        "exists; says which (created, updated, unchanged)",
    )
    deploy_fn.add_argument("dir", metavar="DIR|FILE.wasm", help="a function project or a module")
    deploy_fn.add_argument(
        "--name", help="the function's name (default: DIR's name, or FILE without .wasm)"
    )
    deploy_fn.add_argument("--lang", metavar="LANG", help="the language (default: from the files)")
    deploy_fn.add_argument(
        "-v", "--verbose", action="store_true", help="show the toolchain's output as it runs"
    )
    _add_module_option(deploy_fn)
    _add_limit_options(deploy_fn)
    _add_binding_options(deploy_fn, update=False)
    _add_public_option(deploy_fn, update=True)
    _add_secret_option(deploy_fn)
    deploy_fn.epilog = (deploy_fn.epilog or "") + (
        "\n\nAn existing function keeps the settings not given (as with fn update); its code\n"
        "is compared by SHA-256, so the same build is 'unchanged'."
    )
    _add_no_wait_option(deploy_fn)
    _add_json_option(
        build.command(
            fn,
            "langs",
            _fn_langs,
            "list the languages fless can build and whether their toolchains are installed: "
            "a table on a terminal, JSON in a pipe",
        )
    )
    logs = build.command(fn, "logs", _fn_logs, "show what a function logged lately, newest first")
    logs.add_argument("name")
    _add_module_option(logs)
    logs.add_argument("--limit", type=positive_int, default=20, help="invocations (1-200)")
    logs.add_argument("--full", action="store_true", help="every line, not just the first")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new invocations' logs as they come, oldest first, until Ctrl-C "
        "(JSON lines in a pipe)",
    )
    recent = build.command(fn, "recent", _fn_recent, "list the latest invocations, newest first")
    recent.add_argument("--limit", type=positive_int, default=50, help="invocations (1-1000)")

    inv = top.add_parser(
        "inv", help="invocations queued with `fn invoke --async` (fn recent lists the latest)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    inv_get = build.command(
        inv,
        "get",
        _inv_get,
        "show a queued invocation; with --wait, wait for it and print its result "
        "(exit status 0 when it ran, 1 when it failed, 2 when --timeout passed first)",
    )
    inv_get.add_argument("id", metavar="ID")
    inv_get.add_argument("--wait", action="store_true", help="wait until it has run")
    inv_get.add_argument(
        "--timeout",
        dest="wait_timeout",
        metavar="SECONDS",
        type=_positive_seconds,
        default=300.0,
        help="how long --wait waits (default: 300)",
    )

    admin = top.add_parser("admin", help="administration (admin key only)").add_subparsers(
        dest="area", required=True, metavar="AREA"
    )
    user = admin.add_parser("user", help="users and their keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    build.command(user, "create", _user_create, "create a user and print its key").add_argument(
        "name"
    )
    build.command(user, "list", _user_list, "list the users")
    build.command(
        user, "revoke", _user_revoke, "delete a user; its key stops working at once"
    ).add_argument("name")
    key = admin.add_parser("key", help="the admin key").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    build.command(
        key,
        "rotate",
        _key_rotate,
        "replace the admin key: the old one stops working; the new one is saved where the "
        "old one was read from (--key-file or the config), else printed",
    )

    app = top.add_parser(
        "app", help="APP scripts: which workers run which functions (docs/APP.md)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    for verb, run, text in (
        ("create", _app_create, "store an APP script from a YAML file"),
        ("update", _app_update, "replace an APP script with a YAML file"),
    ):
        command = build.command(app, verb, run, text)
        command.add_argument("name")
        command.add_argument("file", metavar="FILE", help="the script, YAML")
    build.command(app, "list", _app_list, "list the APP scripts")
    build.command(app, "get", _app_get, "show an APP script, parsed").add_argument("name")
    build.command(app, "delete", _app_delete, "delete an APP script").add_argument("name")

    deploy = build.command(
        top,
        "deploy",
        _deploy,
        f"create, update (and with --prune delete) functions as a manifest ({MANIFEST_NAME}) "
        "declares them: prints the plan, then applies it",
    )
    deploy.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help=f"the manifest (default: ./{MANIFEST_NAME}; a directory means its {MANIFEST_NAME})",
    )
    deploy.add_argument(
        "--prune",
        action="store_true",
        help="also delete the functions, in the modules the manifest names, that it does not "
        "declare",
    )
    deploy.add_argument(
        "--dry-run", action="store_true", help="print the plan and change nothing (builds run)"
    )
    deploy.add_argument(
        "--force",
        action="store_true",
        help="update every declared function, even unchanged ones (a password or header "
        "changed: the API never shows those back)",
    )
    deploy.add_argument(
        "-v", "--verbose", action="store_true", help="show the toolchains' output as they run"
    )
    _add_no_wait_option(deploy)
    deploy.epilog = "The manifest's format: docs/MANIFEST.md."

    node = top.add_parser("node", help="the cluster's nodes").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    build.command(node, "list", _node_list, "list the nodes with state, role, arch and memory")
    build.command(
        node, "join", _node_join, "join the node at HOST:PORT (its gossip port) to the cluster"
    ).add_argument("address", metavar="HOST:PORT")

    toolchain = top.add_parser(
        "toolchain", help="the compilers fless fn build uses, one per language"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_json_option(
        build.command(
            toolchain, "list", _fn_langs, "the same as fn langs: each language's toolchain"
        )
    )
    get_toolchain = build.command(
        toolchain,
        "install",
        _toolchain_install,
        "install languages' toolchains (pip, npm; apt for rust, as root); quick when present",
    )
    get_toolchain.add_argument("langs", metavar="LANG", nargs="*", help="see fless fn langs")
    get_toolchain.add_argument("--all", action="store_true", help="every language's toolchain")

    completion = top.add_parser(
        "completion", help="print a shell completion script: source <(fless completion bash)"
    )
    completion.add_argument("shell", choices=("bash", "zsh"))
    completion.set_defaults(run=_completion, cmd_parser=completion)

    add_secret_commands(top, build.command, _client)

    cfg = top.add_parser("cfg", help="the CLI's settings").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    store = build.command(cfg, "set", _cfg_set, "save a setting: url (the server, as --url) or key")
    store.add_argument("setting", choices=SETTINGS + tuple(ALIASES), help="url or key (host: url)")
    store.add_argument("value", nargs="?")
    store.add_argument(
        "--from-file",
        metavar="FILE",
        help="read the value from FILE (- for standard input), so it is not on a command line",
    )
    show = build.command(
        cfg, "get", _cfg_get, "show the settings in effect (the key masked; `cfg get key` in full)"
    )
    show.add_argument("setting", choices=SETTINGS + tuple(ALIASES), nargs="?")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the ``fless`` command.

    Args:
        argv: the arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit status: 0 on success, 1 on an error, 2 on a usage error.
    """
    try:
        args = build_parser().parse_args(argv)
        run: Command = args.run
        status = run(args) or 0
        sys.stdout.flush()
    except SystemExit as exc:  # argparse: --help, --version, a usage error
        return exc.code if isinstance(exc.code, int) else 1
    except FlessError as exc:
        hint = _HINTS.get(exc.status)
        if exc.status == 0 and str(exc).startswith("cannot reach fless"):
            hint = "set the server with --url, FLESS_URL or `fless cfg set url URL`"
        print(f"fless: {exc}" + (f" ({hint})" if hint else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`fless fn list | head`); keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
