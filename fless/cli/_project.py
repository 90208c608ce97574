"""Function projects: writing one from a language's template, building one to ``.wasm``.

Building runs the SDK's ``build.sh PROJECT OUT`` with the real toolchain.
Its output is kept, not shown, while a one-line progress indication runs on
a terminal; when the build fails, the toolchain's own messages are printed
as they came, since those are what the user has to act on. A line the script
starts with ``fless: `` is meant for the user (the JavaScript engine being
built once, a missing toolchain) and is shown at once.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fless.cli._langs import Language, detect_language, file_language, language
from fless.cli._toolchain import build_cache, script_env
from fless.client import FlessError

NAME_PATTERN = re.compile(r"^[_a-zA-Z0-9]{1,160}$")
PLACEHOLDER = "{{name}}"
_SPINNER = "|/-\\"
# The start of a line from build.sh that is meant for the user.
NOTE = "fless: "


def new_project(lang: Language, name: str, dest: Path) -> Path:
    """Writes a project from the language's ``template/`` to ``dest``.

    Args:
        lang: the language.
        name: the function's name; replaces ``{{name}}`` in file names and contents.
        dest: the new project directory; it must not exist yet.

    Returns:
        ``dest``.

    Raises:
        FlessError: the name is not a valid function name, ``dest`` exists, or
            the language has no template.
    """
    if not NAME_PATTERN.match(name):
        raise FlessError(0, f"invalid function name {name!r}: use letters, digits and _")
    template = lang.root / "template"
    if not template.is_dir():
        raise FlessError(0, f"the {lang.name} SDK has no template ({template})")
    if dest.exists():
        raise FlessError(0, f"{dest} already exists")
    for src in sorted(template.rglob("*")):
        target = dest / str(src.relative_to(template)).replace(PLACEHOLDER, name)
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        try:
            target.write_text(data.decode().replace(PLACEHOLDER, name))
        except UnicodeDecodeError:
            target.write_bytes(data)
        shutil.copymode(src, target)
    return dest


@dataclass(frozen=True)
class Project:
    """What ``fless fn build PATH`` builds.

    Args:
        lang: its language.
        directory: the project directory (a single file's folder).
        entry: the single file, when PATH is one; else None.
    """

    lang: Language
    directory: Path
    entry: Path | None = None


def find_project(path: Path, lang_id: str | None = None) -> Project:
    """The project at ``path``: a directory, or one source file the language builds alone.

    Args:
        path: a project directory, or a file such as ``greet.js``.
        lang_id: the language given with ``--lang``; else told from the files.

    Raises:
        FlessError: the language is unknown or cannot be told, or no language
            builds such a file on its own.
    """
    if not path.is_file():
        return Project(language(lang_id) if lang_id else detect_language(path), path)
    lang = language(lang_id) if lang_id else file_language(path)
    if not any(fnmatch.fnmatch(path.name, pattern) for pattern in lang.files):
        raise FlessError(
            0, f"the {lang.name} SDK builds no single file like {path.name}; give its directory"
        )
    return Project(lang, path.parent, path)


def default_output(lang: Language, project: Path, entry: Path | None = None) -> Path:
    """Where a project's ``.wasm`` goes when no ``-o`` is given.

    Returns:
        The language's ``output`` pattern under the project (``<project>/<name>.wasm``);
        for a single file, the file with ``.wasm`` for its suffix.
    """
    if entry is not None:
        # Next to the file as named, not where a link to it points.
        return entry.absolute().with_suffix(".wasm")
    resolved = project.resolve()
    return resolved / lang.output.replace("{name}", resolved.name)


@dataclass
class BuildResult:
    """What a build produced: the module's path, its size and the time it took."""

    output: Path
    size: int
    seconds: float


class _Progress:
    """A one-line spinner with the elapsed time and the toolchain's latest line."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.latest = ""
        self.started = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._writing = threading.Lock()

    def note(self, line: str) -> None:
        """Prints ``line`` above the spinner, which goes on below it."""
        with self._writing:
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self.stream.write("\r\x1b[K")
        self.stream.flush()

    def _run(self) -> None:
        tick = 0
        width = shutil.get_terminal_size().columns
        while not self._done.wait(0.1):
            elapsed = time.monotonic() - self.started
            line = f"{_SPINNER[tick % 4]} {self.label} {elapsed:.0f}s  {self.latest}"
            with self._writing:
                self.stream.write("\r\x1b[K" + line[: width - 1])
                self.stream.flush()
            tick += 1


def build_project(
    lang: Language,
    project: Path,
    output: Path,
    *,
    verbose: bool = False,
    entry: Path | None = None,
) -> BuildResult:
    """Builds ``project`` to ``output`` with the language's ``build.sh``.

    Args:
        lang: the project's language.
        project: the project directory.
        output: the ``.wasm`` to write.
        verbose: show the toolchain's output as it comes, not only on failure.
        entry: the one source file to build (``FLESS_ENTRY``), for a
            language whose ``files`` name it; None for the whole project.

    Returns:
        The built module's path, size and build time.

    Raises:
        FlessError: the build failed (the toolchain's output has been printed
            to stderr) or wrote no module.
    """
    if not project.is_dir():
        raise FlessError(0, f"{project} is not a directory")
    script = lang.root / "build.sh"
    if not script.is_file():
        raise FlessError(0, f"the {lang.name} SDK has no build.sh ({script})")
    output = output.resolve()
    if output.is_dir():
        raise FlessError(0, f"{output} is a directory; give the .wasm file to write")
    env = script_env(lang)
    env.pop("FLESS_ENTRY", None)
    if entry is not None:
        env["FLESS_ENTRY"] = str(entry.resolve())
    for folder in (output.parent, build_cache(lang)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FlessError(0, f"cannot create {folder}: {exc.strerror}") from None
    # Stale output would pass for a fresh build if build.sh failed quietly.
    output.unlink(missing_ok=True)

    label = f"building {entry.name if entry else project.resolve().name} ({lang.name})"
    err = sys.stderr
    progress = _Progress(err, label) if err.isatty() and not verbose else None
    if progress:
        progress.start()
    else:
        print(f"fless: {label}", file=err, flush=True)
    started = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(
        ["sh", str(script), str(project.resolve()), str(output)],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if verbose:
                err.write(line)
            elif line.startswith(NOTE):
                # Shown now, and not again with the output of a failed build.
                if progress:
                    progress.note(line)
                else:
                    err.write(line)
                    err.flush()
                continue
            lines.append(line)
            if progress:
                progress.latest = line.strip()
        status = proc.wait()
    finally:
        if progress:
            progress.stop()
    seconds = time.monotonic() - started
    if status != 0:
        if not verbose:
            err.write("".join(lines))
        raise FlessError(
            0, f"building {entry or project} failed ({lang.name}, exit status {status})"
        )
    if not output.is_file():
        raise FlessError(0, f"{script} succeeded but wrote no {output}")
    return BuildResult(output, output.stat().st_size, seconds)
