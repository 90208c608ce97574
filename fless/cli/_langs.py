"""The language SDKs: where they live, what each declares, which one a project uses.

Each language is a folder ``sdk/<id>/`` holding ``lang.toml`` (its name, the
files that identify a project in it, a priority for ties), ``build.sh``,
``install.sh`` and a ``template/`` for new projects. In a source checkout
``fless/sdk`` is a link to the top-level ``sdk/``; a wheel carries the files
themselves as package data, so the CLI finds them either way.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from fless.client import FlessError

# Overrides where the SDKs are read from (a development copy, say).
SDK_ENV = "FLESS_SDK_DIR"
_PACKAGED = Path(__file__).resolve().parent.parent / "sdk"


@dataclass(frozen=True)
class Language:
    """One SDK, as its ``lang.toml`` declares it.

    Args:
        id: the folder name, what ``--lang`` takes (``rust``, ``go``, ...).
        name: a human name (``Rust``).
        detect: file names or globs whose presence in a project identifies it.
        priority: the higher wins when several languages match a project.
        output: the default ``.wasm`` path, relative to the project;
            ``{name}`` stands for the project folder's name.
        root: the SDK folder.
        files: names or globs of single files ``build.sh`` builds on their own
            (``fless fn build FILE``, passed as ``FLESS_ENTRY``).
    """

    id: str
    name: str
    detect: tuple[str, ...]
    priority: int
    output: str
    root: Path
    files: tuple[str, ...] = ()

    def matches(self, project: Path) -> bool:
        """Whether a file at the top of ``project`` matches one of the ``detect`` patterns.

        Args:
            project: the project directory.

        Returns:
            True when the project looks like one in this language.
        """
        names = [entry.name for entry in project.iterdir()]
        return any(fnmatch.filter(names, pattern) for pattern in self.detect)


def sdk_root() -> Path:
    """The folder holding one sub-folder per language.

    Returns:
        ``$FLESS_SDK_DIR`` when set, else the SDKs shipped with fless.
    """
    return Path(os.environ[SDK_ENV]) if os.environ.get(SDK_ENV) else _PACKAGED


def _read(folder: Path) -> Language:
    path = folder / "lang.toml"
    try:
        with path.open("rb") as file:
            spec = tomllib.load(file)
        detect = spec.get("detect", [])
        if not isinstance(detect, list) or not all(isinstance(d, str) for d in detect):
            raise ValueError("detect must be a list of file names")
        files = spec.get("files", [])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("files must be a list of file names")
        return Language(
            id=folder.name,
            name=str(spec.get("name", folder.name)),
            detect=tuple(detect),
            priority=int(spec.get("priority", 0)),
            output=str(spec.get("output", "{name}.wasm")),
            root=folder,
            files=tuple(files),
        )
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        raise FlessError(0, f"bad language definition {path}: {exc}") from exc


def languages(root: Path | None = None) -> dict[str, Language]:
    """Every language with a ``lang.toml``, by id.

    Args:
        root: the SDK folder; ``sdk_root()`` by default.

    Returns:
        The languages, sorted by id.
    """
    base = root or sdk_root()
    if not base.is_dir():
        return {}
    folders = sorted(p for p in base.iterdir() if (p / "lang.toml").is_file())
    return {folder.name: _read(folder) for folder in folders}


def language(lang_id: str, root: Path | None = None) -> Language:
    """The language ``lang_id``.

    Raises:
        FlessError: there is no such SDK; the message lists those there are.
    """
    known = languages(root)
    if lang_id not in known:
        raise FlessError(
            0, f"unknown language {lang_id!r}; fless knows: {', '.join(known) or 'none'}"
        )
    return known[lang_id]


def file_language(source: Path, root: Path | None = None) -> Language:
    """The language that builds the single file ``source`` (its ``files`` patterns).

    Raises:
        FlessError: no language builds such a file alone; the message names
            those that build single files.
    """
    known = languages(root).values()
    for lang in sorted(known, key=lambda lang: lang.priority, reverse=True):
        if any(fnmatch.fnmatch(source.name, pattern) for pattern in lang.files):
            return lang
    single = ", ".join(f"{lang.name} ({' '.join(lang.files)})" for lang in known if lang.files)
    raise FlessError(
        0,
        f"{source}: only {single or 'no language'} builds from one file; "
        "give the project's directory",
    )


def detect_language(project: Path, root: Path | None = None) -> Language:
    """The language of a project, from the files at its top.

    Args:
        project: the project directory.
        root: the SDK folder; ``sdk_root()`` by default.

    Returns:
        The matching language with the highest priority.

    Raises:
        FlessError: nothing matches, or two languages match with the same priority.
    """
    if not project.is_dir():
        raise FlessError(0, f"{project} is not a directory")
    found = [lang for lang in languages(root).values() if lang.matches(project)]
    if not found:
        raise FlessError(0, f"cannot tell the language of {project}; give --lang")
    found.sort(key=lambda lang: lang.priority, reverse=True)
    if len(found) > 1 and found[0].priority == found[1].priority:
        tied = ", ".join(lang.id for lang in found if lang.priority == found[0].priority)
        raise FlessError(0, f"{project} could be any of {tied}; give --lang")
    return found[0]
