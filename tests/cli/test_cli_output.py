"""Tables, the output default and the upload bar, without a server."""

from __future__ import annotations

import argparse
import io

from fless.cli._output import TABLES, output_format, progress_bar, show, table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_table_aligns_its_columns_and_says_when_empty() -> None:
    rows = [{"name": "a", "role": "worker"}, {"name": "longer", "role": None}]
    columns = [("NAME", lambda r: r["name"]), ("ROLE", lambda r: r["role"])]
    assert table(rows, columns) == "NAME    ROLE\na       worker\nlonger\n"
    assert table([], columns) == "(none)\n"


def test_nodes_show_memory_in_mib() -> None:
    out = io.StringIO()
    node = {
        "name": "pi",
        "role": "worker",
        "state": "alive",
        "arch": "aarch64",
        "mem_free": 512 << 20,
        "mem_total": 1024 << 20,
        "address": "10.0.0.2:7471",
    }
    show([node], "table", "nodes", out)
    assert out.getvalue().splitlines()[1].split() == [
        "pi",
        "worker",
        "alive",
        "aarch64",
        "512",
        "MiB",
        "/",
        "1024",
        "MiB",
        "10.0.0.2:7471",
    ]


def test_json_when_asked_or_for_kinds_without_a_table() -> None:
    out = io.StringIO()
    show([{"name": "a"}], "json", "modules", out)
    assert out.getvalue() == '[\n  {\n    "name": "a"\n  }\n]\n'
    out = io.StringIO()
    show({"x": 1}, "table", "nodes", out)
    assert out.getvalue() == '{\n  "x": 1\n}\n'
    assert {"modules", "functions", "nodes", "users", "logs", "invocations"} <= set(TABLES)


def test_the_default_follows_where_output_goes() -> None:
    assert output_format(argparse.Namespace(), Terminal()) == "table"
    assert output_format(argparse.Namespace(), io.StringIO()) == "json"
    assert output_format(argparse.Namespace(output="json"), Terminal()) == "json"


def test_the_upload_bar_draws_on_a_terminal_only() -> None:
    assert progress_bar("up", io.StringIO()) is None
    err = Terminal()
    report = progress_bar("uploading f", err)
    assert report is not None
    report(32 * 1024, 128 * 1024)
    report(128 * 1024, 128 * 1024)
    text = err.getvalue()
    assert "uploading f [#######.......................]  25% 32 KiB" in text
    assert text.endswith("100% 128 KiB\n")


def test_a_function_row_reads_as_people_read_sizes_and_times() -> None:
    columns = dict(TABLES["functions"])
    row = {"name": "f", "module": "_", "size": 43_315, "memory": 64, "timeout": 2500, "abi": "wasi"}
    assert columns["SIZE"](row) == "42.3 KiB"
    assert columns["MEMORY"](row) == "64 MiB"
    assert columns["TIMEOUT"](row) == "2.5 s"
    assert columns["TIMEOUT"]({"timeout": 300}) == "300 ms"
    assert columns["SIZE"]({"size": 812}) == "812 B"
    assert columns["SIZE"]({}) == "-"
