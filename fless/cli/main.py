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
from fless.cli._langs import Language, detect_language, language, languages
from fless.cli._output import (
    add_output_option,
    completion_script,
    function_text,
    output_format,
    progress_bar,
    show,
)
from fless.cli._project import build_project, default_output, new_project
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
        )
    return _report(created)


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
    more = (args.sinks, args.no_events or None, args.no_sinks or None)
    if all(change is None for change in changes + more):
        _usage_error(
            args,
            "nothing to update: give FILE, --memory, --timeout, --allow, --rename, "
            "--event, --sink, --no-events or --no-sinks",
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


def _project_language(args: argparse.Namespace) -> Language:
    return language(args.lang) if args.lang else detect_language(Path(args.dir))


def _build(args: argparse.Namespace) -> Path:
    lang = _project_language(args)
    project = Path(args.dir)
    output = Path(args.wasm_out) if args.wasm_out else default_output(lang, project)
    built = build_project(lang, project, output, verbose=args.verbose)
    print(
        f"fless: built {built.output} ({built.size} bytes, {lang.name}, {built.seconds:.1f} s)",
        file=sys.stderr,
    )
    return built.output


def _fn_new(args: argparse.Namespace) -> None:
    lang = language(args.lang)
    dest = Path(args.dir) if args.dir else Path(args.name)
    new_project(lang, args.name, dest)
    print(
        f"fless: wrote a {lang.name} function in {dest}; build it with `fless fn build {dest}`",
        file=sys.stderr,
    )


def _fn_build(args: argparse.Namespace) -> None:
    print(_build(args))


def _fn_create(args: argparse.Namespace) -> int:
    _check_hosts(args)
    _check_bindings(args)
    return _upload(args, read_wasm(str(_build(args))))


def _fn_logs(args: argparse.Namespace) -> None:
    with _client(args) as client:
        entries = client.function_logs(args.module, args.name, args.limit)
    if output_format(args) == "table" and args.full:
        for entry in entries:
            print(f"{entry['started']}  {entry['id']}  {entry['worker']}  {entry['outcome']}")
            for line in entry.get("logs", []):
                print(f"    {line}")
            if entry.get("error"):
                print(f"    error: {entry['error']}")
        return
    show(entries, output_format(args), "logs")


def _fn_recent(args: argparse.Namespace) -> None:
    with _client(args) as client:
        show(client.recent_invocations(args.limit), output_format(args), "invocations")


def _completion(args: argparse.Namespace) -> None:
    print(completion_script(build_parser()), end="")


def _fn_langs(args: argparse.Namespace) -> None:
    _print_json(
        {lang.id: {"name": lang.name, "detect": list(lang.detect)} for lang in languages().values()}
    )


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
    _add_no_wait_option(upload)
    get = build.command(fn, "get", _fn_get, "show a function")
    get.add_argument("name")
    _add_module_option(get)
    change = build.command(fn, "update", _fn_update, "change a function's code or settings")
    change.add_argument("name")
    change.add_argument("file", metavar="FILE.wasm", nargs="?")
    _add_module_option(change)
    _add_limit_options(change)
    change.add_argument("--rename", metavar="NEW", help="a new name for the function")
    _add_binding_options(change, update=True)
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
    create = build.command(fn, "create", _fn_create, "build a function project and upload it")
    create.add_argument("name")
    create.add_argument("dir", metavar="DIR")
    _add_build_options(create)
    _add_module_option(create)
    _add_limit_options(create)
    _add_binding_options(create, update=False)
    _add_no_wait_option(create)
    build.command(fn, "langs", _fn_langs, "list the languages fless can build")
    logs = build.command(fn, "logs", _fn_logs, "show what a function logged lately, newest first")
    logs.add_argument("name")
    _add_module_option(logs)
    logs.add_argument("--limit", type=positive_int, default=20, help="invocations (1-200)")
    logs.add_argument("--full", action="store_true", help="every line, not just the first")
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

    node = top.add_parser("node", help="the cluster's nodes").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    build.command(node, "list", _node_list, "list the nodes with state, role, arch and memory")
    build.command(
        node, "join", _node_join, "join the node at HOST:PORT (its gossip port) to the cluster"
    ).add_argument("address", metavar="HOST:PORT")

    completion = top.add_parser(
        "completion", help="print a shell completion script: source <(fless completion bash)"
    )
    completion.add_argument("shell", choices=("bash", "zsh"))
    completion.set_defaults(run=_completion, cmd_parser=completion)

    cfg = top.add_parser("cfg", help="the CLI's settings").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    store = build.command(
        cfg, "set", _cfg_set, "save a setting: url (the server, as --url) or key"
    )
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
