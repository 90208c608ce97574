"""``fless secret set|list|delete``: the key's secrets, whose values never come back.

A value is read from standard input (a prompt that does not echo, on a
terminal) or from ``--from-file``, never from the command line, where shell
history and ``ps`` would keep it. One trailing newline is dropped, so
``echo TOKEN | fless secret set NAME`` stores ``TOKEN``. A function reads a
secret only when its metadata names it (``fless fn create ... --secret
NAME``); a binding when a param is ``{"secret": NAME}`` (docs/EVENTS.md).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from fless.client import Client, FlessError

from ._output import output_format, show, table

# How main's builder adds a leaf command: (group, name, run, help) -> its parser.
AddCommand = Callable[
    [
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        str,
        Callable[[argparse.Namespace], int | None],
        str,
    ],
    argparse.ArgumentParser,
]
ClientOf = Callable[[argparse.Namespace], Client]


def add_commands(
    top: argparse._SubParsersAction[argparse.ArgumentParser],
    command: AddCommand,
    client_of: ClientOf,
) -> None:
    """Adds ``fless secret`` with its ``set``, ``list`` and ``delete``."""
    group = top.add_parser(
        "secret",
        help="secrets your functions and bindings name; values are never shown back",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    setter = command(
        group,
        "set",
        lambda args: _set(args, client_of),
        "create or replace a secret; the value comes from standard input (a prompt on a "
        "terminal) or --from-file, never the command line",
    )
    setter.add_argument("name", help="the secret's name: letters, digits and _")
    setter.add_argument(
        "--from-file",
        metavar="FILE",
        help="read the value from FILE (- for standard input); one trailing newline is dropped",
    )
    command(
        group, "list", lambda args: _list(args, client_of), "list your secrets' names and dates"
    )
    command(
        group,
        "delete",
        lambda args: _delete(args, client_of),
        "delete a secret: functions and bindings that name it fail, naming it",
    ).add_argument("name")


def read_value(name: str, source: str | None) -> str:
    """A secret's value from ``source`` (a file, ``-`` or None for standard input).

    Raises:
        FlessError: it cannot be read, is not UTF-8 text, or is empty.
    """
    try:
        if source is not None and source != "-":
            text = Path(source).read_bytes().decode("utf-8")
        elif sys.stdin.isatty():
            text = getpass.getpass(f"value of {name} (not shown): ")
        else:
            text = sys.stdin.buffer.read().decode("utf-8")
    except OSError as exc:
        raise FlessError(0, f"cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise FlessError(0, f"the value of {name} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise FlessError(0, f"the value of {name} is empty; nothing was stored")
    return text


def _set(args: argparse.Namespace, client_of: ClientOf) -> None:
    value = read_value(args.name, args.from_file)
    with client_of(args) as client:
        _, created = client.set_secret(args.name, value)
    # By the answer's status: the dates are whole seconds, and a secret
    # replaced within the second it was made has both the same.
    what = "created" if created else "replaced"
    print(f"{what} secret {args.name}")


def _list(args: argparse.Namespace, client_of: ClientOf) -> None:
    with client_of(args) as client:
        entries = client.list_secrets()
    if output_format(args) == "table":
        columns = [
            ("NAME", lambda s: s.get("name")),
            ("CREATED", lambda s: s.get("created")),
            ("UPDATED", lambda s: s.get("updated")),
        ]
        sys.stdout.write(table(entries, columns))
    else:
        show(entries, "json")


def _delete(args: argparse.Namespace, client_of: ClientOf) -> None:
    with client_of(args) as client:
        client.delete_secret(args.name)
    print(f"deleted secret {args.name}")
