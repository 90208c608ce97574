"""The toolchains the language SDKs build with: which are installed, installing one.

Each SDK's ``install.sh`` installs its toolchain (pip into the interpreter
running fless, npm into fless's cache, apt for Rust) and, given ``--check``,
only says what is missing. Both run from the SDK files the package carries,
so ``fless toolchain install`` works where fless was installed from a wheel
as well as in a source checkout.

What a toolchain keeps (the QuickJS sources and engine, the npm packages)
goes to ``$FLESS_SDK_CACHE``: by default the checkout's ``.cache/sdk``, which
``make test`` and CI keep, and for an installed package ``<cache>/sdk`` in
the user's cache, never the package's own folder (often not writable).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fless.cli._langs import Language, sdk_root
from fless.cli._output import Column, table
from fless.client import FlessError

SDK_CACHE_ENV = "FLESS_SDK_CACHE"
# A check only looks (imports a module, lists Debian packages): seconds at most.
CHECK_TIMEOUT_S = 60


def user_cache() -> Path:
    """fless's folder in the user's cache.

    Returns:
        ``$FLESS_CACHE_DIR``, else ``$XDG_CACHE_HOME/fless``, else ``~/.cache/fless``.
    """
    # Absolute: the scripts run in the project's folder, not this one.
    if os.environ.get("FLESS_CACHE_DIR"):
        return Path(os.environ["FLESS_CACHE_DIR"]).absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "fless"


def build_cache(lang: Language) -> Path:
    """Where a language's builds keep what they reuse (Go's build cache, cargo's target).

    Returns:
        ``<user cache>/<lang>``.
    """
    return user_cache() / lang.id


def _checkout(sdk: Path) -> Path | None:
    # In a checkout the SDKs (through the fless/sdk link) sit next to the
    # fless package; in an installed package they are inside it.
    real = sdk.resolve()
    return real.parent if (real.parent / "fless" / "__init__.py").is_file() else None


def sdk_cache() -> Path:
    """Where the toolchains keep what they install or build outside ``$PYTHON``'s environment.

    Returns:
        ``$FLESS_SDK_CACHE``, else the checkout's ``.cache/sdk`` when the SDKs
        are a checkout's, else ``<user cache>/sdk``.
    """
    if os.environ.get(SDK_CACHE_ENV):
        return Path(os.environ[SDK_CACHE_ENV]).absolute()
    checkout = _checkout(sdk_root())
    return checkout / ".cache" / "sdk" if checkout else user_cache() / "sdk"


def script_env(lang: Language) -> dict[str, str]:
    """The environment an SDK's ``build.sh`` and ``install.sh`` run in.

    Returns:
        This process's environment with ``PYTHON`` (the interpreter running
        fless, unless set: the pip-installed toolchains live in its
        environment), ``FLESS_SDK``, ``FLESS_CACHE`` and ``FLESS_SDK_CACHE``.
    """
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    env["FLESS_SDK"] = str(lang.root)
    env["FLESS_CACHE"] = str(build_cache(lang))
    env[SDK_CACHE_ENV] = str(sdk_cache())
    return env


@dataclass(frozen=True)
class Toolchain:
    """One language's toolchain as ``install.sh --check`` found it.

    Args:
        lang: the language.
        missing: what is missing, in the script's words; empty when installed.
    """

    lang: Language
    missing: str = ""

    @property
    def installed(self) -> bool:
        """Whether everything ``build.sh`` needs is there."""
        return not self.missing


def _script(lang: Language) -> Path:
    script = lang.root / "install.sh"
    if not script.is_file():
        raise FlessError(0, f"the {lang.name} SDK has no install.sh ({script})")
    return script


def check(lang: Language) -> Toolchain:
    """Whether ``lang``'s toolchain is installed; installs nothing.

    Returns:
        The toolchain, with what is missing (or why the check failed).
    """
    try:
        run = subprocess.run(
            ["sh", str(_script(lang)), "--check"],
            env=script_env(lang),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except FlessError as exc:
        return Toolchain(lang, exc.detail)
    except subprocess.TimeoutExpired:
        return Toolchain(lang, f"its check took over {CHECK_TIMEOUT_S} s")
    if run.returncode == 0:
        return Toolchain(lang)
    said = " ".join((run.stdout.strip() or run.stderr.strip()).split())
    return Toolchain(lang, said or f"install.sh --check failed (exit status {run.returncode})")


def check_all(langs: list[Language]) -> list[Toolchain]:
    """:func:`check` for each of ``langs``, side by side (each mostly waits on an import).

    Returns:
        The toolchains, in the order of ``langs``.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(check, langs))


def install(lang: Language, stream: TextIO | None = None) -> bool:
    """Installs ``lang``'s toolchain unless it is there; says what it does on ``stream``.

    The script's own output (pip, npm, apt, the engine build) goes to this
    process's stderr as it comes: an install takes seconds to minutes.

    Returns:
        True when something was installed, False when all was there already.

    Raises:
        FlessError: ``install.sh`` failed, or ran and left something missing.
    """
    err = stream or sys.stderr
    script = _script(lang)
    before = check(lang)
    if before.installed:
        print(f"fless: the {lang.name} toolchain is already installed", file=err)
        return False
    print(
        f"fless: installing the {lang.name} toolchain; missing: {before.missing}",
        file=err,
        flush=True,
    )
    status = subprocess.run(
        ["sh", str(script)], env=script_env(lang), stdin=subprocess.DEVNULL, check=False
    ).returncode
    if status != 0:
        raise FlessError(
            0, f"installing the {lang.name} toolchain failed ({script}, exit status {status})"
        )
    after = check(lang)
    if not after.installed:
        raise FlessError(0, f"{script} ran, yet {after.missing} is still missing")
    print(f"fless: the {lang.name} toolchain is installed", file=err)
    return True


def describe(toolchains: list[Toolchain]) -> dict[str, dict[str, Any]]:
    """The languages and their toolchains as JSON, by language id."""
    return {
        t.lang.id: {
            "name": t.lang.name,
            "detect": list(t.lang.detect),
            "installed": t.installed,
            **({"missing": t.missing} if t.missing else {}),
        }
        for t in toolchains
    }


COLUMNS: list[Column] = [
    ("LANG", lambda row: row["id"]),
    ("NAME", lambda row: row["name"]),
    ("PROJECT FILES", lambda row: " ".join(row["detect"])),
    ("TOOLCHAIN", lambda row: "installed" if row["installed"] else f"missing: {row['missing']}"),
]


def show(toolchains: list[Toolchain], fmt: str, stream: TextIO | None = None) -> None:
    """Prints the languages and whether their toolchains are installed.

    Args:
        toolchains: what :func:`check_all` found.
        fmt: ``table`` (for people; with a hint when some are missing) or ``json``.
        stream: where to print (stdout by default).
    """
    out = stream or sys.stdout
    described = describe(toolchains)
    if fmt != "table":
        out.write(json.dumps(described, indent=2, ensure_ascii=False) + "\n")
        return
    out.write(table([{"id": key, **value} for key, value in described.items()], COLUMNS))
    missing = [t.lang.id for t in toolchains if not t.installed]
    if missing:
        out.write(f"\ninstall one with: fless toolchain install LANG ({', '.join(missing)})\n")
