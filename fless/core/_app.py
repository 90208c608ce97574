"""APP scripts (FunLess's allocation priority policies): parsing, and placing a call by one.

A script is a YAML list. Each item maps one tag to a list of blocks, with an
optional ``followup`` beside it (``fail``, the default, or ``default``)::

    - camera:
        - workers: [pi-camera-1, pi-camera-2]
          strategy: best-first
          invalidate: {max_concurrent_invocations: 4}
      followup: default
    - default:
        - workers: "*"
          strategy: platform

A block names its ``workers``: ``"*"`` for every worker, else a list whose
items are worker names or, beyond FunLess, ``{label: L}`` for every worker
labelled ``L`` (a mapping cannot be mistaken for a name). Its ``strategy``
is ``best-first`` (the default: the first valid worker in the order
listed), ``random`` or ``platform`` (fless's own choice: the most free
memory). ``invalidate`` holds ``capacity_used: "N%"`` (the worker's memory
in use once the function is placed) and ``max_concurrent_invocations: N``
(calls this core has in flight there), each absent meaning no limit.
``affinity`` lists tags: ``t`` means the worker hosts a function tagged
``t``, ``!t`` that it hosts none.

``parse`` turns the text into the form FunLess stores and returns, with
``"infinity"`` for an absent limit; a script that does not parse raises
``ScriptError`` naming the tag and one of FunLess's reasons (``no_blocks``,
``no_block_workers``, ``unknown_followup``, ``unknown_construct``).

``place`` is the policy itself, pure: given the workers as this core sees
them, the script, the function's tag and memory, it returns the worker, or
the reasons, block by block, why none fitted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fless._units import MiB

INFINITY = "infinity"
STRATEGIES = ("best-first", "random", "platform")
FOLLOWUPS = ("fail", "default")
DEFAULT_TAG = "default"
# The longest script text taken, and the most tags and blocks in one.
MAX_SCRIPT_BYTES = 64 * 1024
MAX_TAGS = 256
MAX_BLOCKS = 256
# The most blocks, workers and affinity tags in one script, counted after
# YAML aliases are expanded: 64 KiB of text holds fewer than this written
# out, but a few aliases to aliases would otherwise make megabytes of it.
MAX_ENTRIES = 16384
_BLOCK_KEYS = frozenset({"workers", "strategy", "invalidate", "affinity"})
_PERCENT = re.compile(r"\s*(\d{1,3})\s*%\s*")


class ScriptError(ValueError):
    """A script that does not parse: which tag (if any), and FunLess's reason.

    Attributes:
        tag: the tag whose entry is wrong, or None for the script as a whole.
        reason: ``no_blocks``, ``no_block_workers``, ``unknown_followup``,
            ``unknown_construct``, or ``not_a_script`` (not a YAML list).
        detail: what exactly, for a person.
    """

    def __init__(self, tag: str | None, reason: str, detail: str) -> None:
        where = f"tag {tag!r}" if tag is not None else "the script"
        super().__init__(f"{where}: {reason}: {detail}")
        self.tag = tag
        self.reason = reason
        self.detail = detail


def parse(text: str | bytes) -> dict[str, Any]:
    """The parsed form of an APP script (``{"tags": {TAG: {"blocks", "followup"}}}``).

    Raises:
        ScriptError: it is not a YAML list of tags, or a tag is wrong.
    """
    if len(text) > MAX_SCRIPT_BYTES:
        raise ScriptError(None, "not_a_script", f"longer than {MAX_SCRIPT_BYTES} bytes")
    import yaml  # here: an API process that never parses a script need not load it

    try:
        # safe_load: plain data only, no Python objects from the text.
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(None, "not_a_script", f"not YAML ({_first_line(exc)})") from None
    if not isinstance(document, list) or not document:
        raise ScriptError(None, "not_a_script", "a script is a non-empty YAML list of tags")
    if len(document) > MAX_TAGS:
        raise ScriptError(None, "not_a_script", f"more than {MAX_TAGS} tags")
    _count_entries(document)
    tags: dict[str, Any] = {}
    for item in document:
        tag, entry = _tag_entry(item)
        if tag in tags:
            raise ScriptError(tag, "unknown_construct", "the tag is given twice")
        tags[tag] = entry
    return {"tags": tags}


def _count_entries(document: list[Any]) -> None:
    """Refuse a script whose lists, aliases expanded, exceed ``MAX_ENTRIES`` items.

    Only the script's own shape is walked (tags, their blocks, a block's
    workers and affinity), each list's length added before it is entered,
    so an alias bomb is refused after at most ``MAX_ENTRIES`` steps.
    """
    total = 0

    def add(value: object) -> None:
        nonlocal total
        if isinstance(value, list):
            total += len(value)
            if total > MAX_ENTRIES:
                raise ScriptError(
                    None,
                    "not_a_script",
                    f"more than {MAX_ENTRIES} blocks, workers and tags with aliases expanded",
                )

    for item in document:
        for key, blocks in item.items() if isinstance(item, dict) else ():
            if key == "followup":
                continue
            add(blocks)
            for block in blocks if isinstance(blocks, list) else ():
                if isinstance(block, dict):
                    add(block.get("workers"))
                    add(block.get("affinity"))


def _tag_entry(item: object) -> tuple[str, dict[str, Any]]:
    if not isinstance(item, dict):
        raise ScriptError(None, "unknown_construct", f"an item is not a mapping: {item!r:.60}")
    keys = [key for key in item if key != "followup"]
    if len(keys) != 1 or not isinstance(keys[0], str) or not keys[0]:
        raise ScriptError(
            None, "unknown_construct", f"an item names {len(keys)} tags, not one: {keys!r:.80}"
        )
    tag = keys[0]
    followup = item.get("followup", "fail")
    if followup not in FOLLOWUPS:
        raise ScriptError(tag, "unknown_followup", f"followup is {followup!r}, not fail or default")
    blocks = item[tag]
    if not isinstance(blocks, list) or not blocks:
        raise ScriptError(tag, "no_blocks", "a tag maps to a non-empty list of blocks")
    if len(blocks) > MAX_BLOCKS:
        raise ScriptError(tag, "unknown_construct", f"more than {MAX_BLOCKS} blocks")
    return tag, {"blocks": [_block(tag, block) for block in blocks], "followup": followup}


def _block(tag: str, block: object) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise ScriptError(tag, "unknown_construct", f"a block is not a mapping: {block!r:.60}")
    unknown = set(block) - _BLOCK_KEYS
    if unknown:
        raise ScriptError(
            tag, "unknown_construct", f"unknown block keys {sorted(map(str, unknown))}"
        )
    if "workers" not in block:
        raise ScriptError(tag, "no_block_workers", "a block has no workers")
    strategy = block.get("strategy", "best-first")
    if strategy not in STRATEGIES:
        raise ScriptError(tag, "unknown_construct", f"unknown strategy {strategy!r}")
    return {
        "workers": _workers(tag, block["workers"]),
        "strategy": strategy,
        "invalidate": _invalidate(tag, block.get("invalidate") or {}),
        "affinity": _affinity(tag, block.get("affinity") or []),
    }


def _workers(tag: str, workers: object) -> str | list[Any]:
    if workers == "*":
        return "*"
    if not isinstance(workers, list) or not workers:
        raise ScriptError(tag, "no_block_workers", 'workers is "*" or a non-empty list')
    chosen: list[Any] = []
    for worker in workers:
        if isinstance(worker, str) and worker:
            chosen.append(worker)
        elif (
            isinstance(worker, dict)
            and set(worker) == {"label"}
            and isinstance(worker["label"], str)
            and worker["label"]
        ):
            chosen.append({"label": worker["label"]})
        else:
            raise ScriptError(
                tag, "unknown_construct", f"a worker is a name or {{label: L}}, not {worker!r:.60}"
            )
    return chosen


def _invalidate(tag: str, rules: object) -> dict[str, Any]:
    if not isinstance(rules, dict) or set(rules) - {"capacity_used", "max_concurrent_invocations"}:
        raise ScriptError(
            tag,
            "unknown_construct",
            "invalidate takes capacity_used and max_concurrent_invocations",
        )
    used: Any = INFINITY
    if "capacity_used" in rules:
        raw = rules["capacity_used"]
        match = _PERCENT.fullmatch(raw) if isinstance(raw, str) else None
        if match is None or int(match.group(1)) > 100:
            raise ScriptError(tag, "unknown_construct", f'capacity_used is "N%", not {raw!r:.40}')
        used = int(match.group(1))
    calls: Any = INFINITY
    if "max_concurrent_invocations" in rules:
        raw = rules["max_concurrent_invocations"]
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise ScriptError(
                tag, "unknown_construct", f"max_concurrent_invocations is a count, not {raw!r:.40}"
            )
        calls = raw
    return {"capacity_used": used, "max_concurrent_invocations": calls}


def _affinity(tag: str, tags: object) -> dict[str, list[str]]:
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip("!") for t in tags):
        raise ScriptError(tag, "unknown_construct", "affinity is a list of tags (!tag: not)")
    return {
        "affinity": [t for t in tags if not t.startswith("!")],
        "antiaffinity": [t[1:] for t in tags if t.startswith("!")],
    }


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- placing ------------------------------------------------------------------


@dataclass(frozen=True)
class AppWorker:
    """A worker as this core sees it when it places a call.

    Attributes:
        name: its name (``worker.name``), the one blocks list (two workers
            may share one: a block listing it lists both).
        labels: its labels (``worker.labels``).
        alive: whether gossip has it alive.
        mem_total: the memory it offers functions, in bytes.
        mem_free: of which free now: as it last told, less this core's calls
            in flight there.
        in_flight: calls this core has running there now.
        hosts: the tags of the functions it hosts (see ``docs/APP.md``).
        key: what tells it apart from every other worker (its member name);
            its name when empty. ``place`` returns it.
    """

    name: str
    labels: frozenset[str] = frozenset()
    alive: bool = True
    mem_total: int = 0
    mem_free: int = 0
    in_flight: int = 0
    hosts: frozenset[str] = frozenset()
    key: str = ""

    @property
    def id(self) -> str:
        return self.key or self.name


@dataclass(frozen=True)
class Placement:
    """Where a call goes: ``worker`` (its key), or None and ``reasons``, block by block."""

    worker: str | None
    reasons: tuple[str, ...] = field(default=())


class NoTag(LookupError):
    """The script has neither the function's tag nor ``default``."""


def place(
    script: Mapping[str, Any],
    tag: str | None,
    need: int,
    workers: Sequence[AppWorker],
    choose: Callable[[Sequence[AppWorker]], AppWorker] = random.choice,
) -> Placement:
    """The worker a call goes to under ``script``, or why none fits.

    Args:
        script: a parsed script (``parse``).
        tag: the function's tag, if it has one.
        need: the function's memory, in bytes.
        workers: every worker this core knows.
        choose: picks one of the valid workers for a ``random`` block.

    Raises:
        NoTag: the script has neither ``tag`` nor ``default``.
    """
    tags = script["tags"]
    if tag is not None and tag in tags:
        used = tag
    elif DEFAULT_TAG in tags:
        used = DEFAULT_TAG
    else:
        raise NoTag(
            f"the script has no tag {tag!r} and no {DEFAULT_TAG!r} tag"
            if tag is not None
            else f"the function has no tag and the script no {DEFAULT_TAG!r} tag"
        )
    reasons: list[str] = []
    entry = tags[used]
    chosen = _first_fit(entry["blocks"], used, need, workers, choose, reasons)
    if chosen is None and entry["followup"] == "default" and used != DEFAULT_TAG:
        if DEFAULT_TAG in tags:
            chosen = _first_fit(
                tags[DEFAULT_TAG]["blocks"], DEFAULT_TAG, need, workers, choose, reasons
            )
        else:
            reasons.append(f"followup default, but the script has no {DEFAULT_TAG!r} tag")
    return Placement(chosen, () if chosen is not None else tuple(reasons))


def _first_fit(
    blocks: Sequence[Mapping[str, Any]],
    tag: str,
    need: int,
    workers: Sequence[AppWorker],
    choose: Callable[[Sequence[AppWorker]], AppWorker],
    reasons: list[str],
) -> str | None:
    for number, block in enumerate(blocks, 1):
        listed = _listed(block["workers"], workers)
        valid = []
        why = []
        for worker in listed:
            refusal = _refusal(block, worker, need)
            if refusal is None:
                valid.append(worker)
            else:
                why.append(f"{worker.name}: {refusal}")
        if valid:
            strategy = block["strategy"]
            if strategy == "random":
                return choose(valid).id
            if strategy == "platform":
                return _most_free(valid).id
            return valid[0].id
        if not listed:
            why.append("no worker known matches " + _shown_workers(block["workers"]))
        reasons.append(f"{tag} block {number}: " + "; ".join(why))
    return None


def _listed(wanted: str | Sequence[Any], workers: Sequence[AppWorker]) -> list[AppWorker]:
    """The block's workers, in its order (``*``: all, by name), each once."""
    by_name = sorted(workers, key=lambda w: w.name)
    if wanted == "*":
        return by_name
    found: list[AppWorker] = []
    seen: set[str] = set()
    for item in wanted:
        if isinstance(item, dict):
            matches = [w for w in by_name if item["label"] in w.labels]
        else:
            matches = [w for w in by_name if w.name == item]
        for worker in matches:
            if worker.id not in seen:
                seen.add(worker.id)
                found.append(worker)
    return found


def _refusal(block: Mapping[str, Any], worker: AppWorker, need: int) -> str | None:
    """Why ``worker`` is not valid for ``block``, or None when it is."""
    if not worker.alive:
        return "not alive"
    if worker.mem_free < need:
        return f"{worker.mem_free // MiB} MiB free, the function needs {need // MiB} MiB"
    rules = block["invalidate"]
    calls = rules["max_concurrent_invocations"]
    if calls != INFINITY and worker.in_flight >= calls:
        return f"{worker.in_flight} calls in flight, at most {calls}"
    used = rules["capacity_used"]
    if used != INFINITY:
        total = max(worker.mem_total, 1)
        after = (worker.mem_total - worker.mem_free + need) * 100 / total
        if after > used:
            return f"{after:.0f}% of its memory used once placed, at most {used}%"
    for tag in block["affinity"]["affinity"]:
        if tag not in worker.hosts:
            return f"hosts no function tagged {tag!r}"
    for tag in block["affinity"]["antiaffinity"]:
        if tag in worker.hosts:
            return f"hosts a function tagged {tag!r}"
    return None


def _shown_workers(wanted: str | Sequence[Any]) -> str:
    if wanted == "*":
        return "*"
    return ", ".join(f"label {w['label']}" if isinstance(w, dict) else w for w in wanted)


def _most_free(valid: Sequence[AppWorker]) -> AppWorker:
    """fless's own choice: the most free memory, ties to the first by name."""
    best = valid[0]
    for worker in sorted(valid, key=lambda w: w.name):
        if worker.mem_free > best.mem_free or (
            worker.mem_free == best.mem_free and worker.name < best.name
        ):
            best = worker
    return best
