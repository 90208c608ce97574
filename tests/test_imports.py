"""The design's doors: which package may import which, and nobody's private modules.

The direction (docs/ARCHITECTURE.md): ``api -> core -> {worker, net,
gossip, exec}``, ``worker -> {net, gossip, exec}``, ``events -> core``;
``node`` and ``cli`` wire everything. A package's public names are in its
``__init__.py``: a module of another package never imports one of its
``_private`` modules. Every import counts, at the top or inside a function.
Top-level modules of ``fless`` (settings, units, addresses) may be imported
by any package, and import no package themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

FLESS = Path(__file__).resolve().parents[1] / "fless"
# What each package may import besides itself and the top-level modules;
# None: anything (the packages that wire the others).
MAY_IMPORT: dict[str, set[str] | None] = {
    "api": {"core"},
    "core": {"worker", "net", "gossip", "exec"},
    "worker": {"net", "gossip", "exec"},
    "events": {"core"},
    "exec": set(),
    "net": set(),
    "gossip": set(),
    "node": None,
    "cli": None,
}
# Doors crossed on purpose: none. An entry here would have to still occur
# (the second test), so a list like this can only shrink.
KNOWN: set[tuple[str, str]] = set()


def imports(path: Path) -> set[str]:
    """The fless modules ``path`` imports: ``from fless.x import _y`` names ``fless.x._y``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fless"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "fless":
                continue
            found.add(node.module)
            found |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")  # not __version__
            }
    return found


def crossings() -> set[tuple[str, str]]:
    """Every (module, import) that breaks the direction or opens a private module."""
    found: set[tuple[str, str]] = set()
    for path in sorted(FLESS.rglob("*.py")):
        relative = path.relative_to(FLESS)
        if relative.parts[0] == "sdk":
            continue  # guest code, not fless's own
        source = relative.parts[0] if len(relative.parts) > 1 else None
        for name in imports(path):
            parts = name.split(".")
            if len(parts) < 2:
                continue
            target = parts[1]
            top_level = (FLESS / f"{target}.py").exists()
            if source is None:
                if not top_level:  # a top-level module imports no package
                    found.add((relative.as_posix(), name))
                continue
            if target == source:
                continue
            private = any(p.startswith("_") for p in parts[2:])
            allowed = MAY_IMPORT.get(source, set())
            wrong_way = not top_level and allowed is not None and target not in allowed
            if private or wrong_way:
                found.add((relative.as_posix(), name))
    return found


def test_no_module_opens_a_door_the_design_keeps_shut() -> None:
    new = crossings() - KNOWN
    assert not new, "imports that break the design's direction or open a private module:\n" + (
        "\n".join(f"  {module}: {name}" for module, name in sorted(new))
    )


def test_the_known_crossings_are_still_there_so_the_list_only_shrinks() -> None:
    gone = KNOWN - crossings()
    assert not gone, "no longer crossed, remove from KNOWN:\n" + (
        "\n".join(f"  {module}: {name}" for module, name in sorted(gone))
    )


def test_the_check_sees_a_private_import_and_a_wrong_way(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from fless import __version__\n"
        "from fless.core import _metrics\n"
        "def f():\n"
        "    import fless.api\n"
        "    from fless.exec._engine import WasmRuntime\n"
    )
    assert imports(module) == {
        "fless",
        "fless.core",
        "fless.core._metrics",
        "fless.api",
        "fless.exec._engine",
    }
