"""APP scripts: what parses into what, what is refused and why, and where each rule places a call.

The placing policy is pure: these tables feed it workers as a core would see
them, with no cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fless._units import MiB
from fless.core._app import AppWorker, NoTag, ScriptError, parse, place

EXAMPLE = """
- camera:
    - workers: [pi-camera-1, pi-camera-2]
      strategy: best-first
      invalidate: {max_concurrent_invocations: 4}
  followup: default
- default:
    - workers: "*"
      strategy: platform
"""


def test_the_issue_example_parses_to_funless_stored_form() -> None:
    assert parse(EXAMPLE) == {
        "tags": {
            "camera": {
                "blocks": [
                    {
                        "workers": ["pi-camera-1", "pi-camera-2"],
                        "strategy": "best-first",
                        "invalidate": {
                            "capacity_used": "infinity",
                            "max_concurrent_invocations": 4,
                        },
                        "affinity": {"affinity": [], "antiaffinity": []},
                    }
                ],
                "followup": "default",
            },
            "default": {
                "blocks": [
                    {
                        "workers": "*",
                        "strategy": "platform",
                        "invalidate": {
                            "capacity_used": "infinity",
                            "max_concurrent_invocations": "infinity",
                        },
                        "affinity": {"affinity": [], "antiaffinity": []},
                    }
                ],
                "followup": "fail",
            },
        }
    }


def test_labels_percentages_and_affinity_parse() -> None:
    parsed = parse(
        """
- heavy:
    - workers: [{label: ssd}, big-1]
      invalidate: {capacity_used: "50%"}
      affinity: [db, "!noisy"]
"""
    )
    block = parsed["tags"]["heavy"]["blocks"][0]
    assert block["workers"] == [{"label": "ssd"}, "big-1"]
    assert block["strategy"] == "best-first"
    assert block["invalidate"]["capacity_used"] == 50
    assert block["affinity"] == {"affinity": ["db"], "antiaffinity": ["noisy"]}


@pytest.mark.parametrize(
    ("text", "tag", "reason"),
    [
        ("- t: []", "t", "no_blocks"),
        ("- t:", "t", "no_blocks"),
        ("- t:\n    - strategy: random", "t", "no_block_workers"),
        ("- t:\n    - workers: []", "t", "no_block_workers"),
        ("- t:\n    - workers: '*'\n  followup: maybe", "t", "unknown_followup"),
        ("- t:\n    - workers: '*'\n      strategy: fastest", "t", "unknown_construct"),
        ("- t:\n    - workers: '*'\n      colour: red", "t", "unknown_construct"),
        (
            "- t:\n    - workers: '*'\n      invalidate: {capacity_used: 50}",
            "t",
            "unknown_construct",
        ),
        (
            "- t:\n    - workers: '*'\n      invalidate: {capacity_used: '150%'}",
            "t",
            "unknown_construct",
        ),
        (
            "- t:\n    - workers: '*'\n      invalidate: {max_concurrent_invocations: -1}",
            "t",
            "unknown_construct",
        ),
        ("- t:\n    - workers: [{name: x}]", "t", "unknown_construct"),
        ("- t:\n    - workers: '*'\n- t:\n    - workers: '*'", "t", "unknown_construct"),
        ("- a: [{workers: '*'}]\n  b: [{workers: '*'}]", None, "unknown_construct"),
        ("[]", None, "not_a_script"),
        ("just: a mapping", None, "not_a_script"),
        ("- t: [unclosed", None, "not_a_script"),
    ],
)
def test_a_script_that_does_not_parse_names_the_tag_and_the_reason(
    text: str, tag: str | None, reason: str
) -> None:
    with pytest.raises(ScriptError) as info:
        parse(text)
    assert (info.value.tag, info.value.reason) == (tag, reason)
    assert reason in str(info.value)
    if tag is not None:
        assert repr(tag) in str(info.value)


def test_yaml_tags_for_python_objects_are_refused() -> None:
    with pytest.raises(ScriptError, match="not_a_script"):
        parse("- !!python/object/apply:os.system ['true']")


def test_a_huge_script_is_refused_before_it_is_read() -> None:
    with pytest.raises(ScriptError, match="longer than"):
        parse("- t: [{workers: '*'}]\n" + "#" * (1 << 20))


def test_an_alias_bomb_is_refused_before_it_is_expanded() -> None:
    # 15 KB of text: 200 tags share one list of 200 blocks, each block the
    # same 2,000 workers. Expanded, that is 80 million workers (680 MB of
    # JSON, 20 s of CPU); refused, it is the count of the first few lists.
    names = ",".join(f"w{i}" for i in range(2000))
    text = f"- t0: &blocks\n  - &block {{workers: [{names}]}}\n" + "  - *block\n" * 199
    text += "".join(f"- t{i}: *blocks\n" for i in range(1, 200))
    assert len(text) < 16 * 1024
    with pytest.raises(ScriptError, match="aliases expanded"):
        parse(text)


def test_aliases_within_the_limit_are_expanded() -> None:
    text = "- a:\n  - workers: &pis [pi-1, pi-2]\n- b:\n  - workers: *pis\n    strategy: random\n"
    tags = parse(text)["tags"]
    assert tags["a"]["blocks"][0]["workers"] == ["pi-1", "pi-2"]
    assert tags["b"]["blocks"][0]["workers"] == ["pi-1", "pi-2"]


# -- placing --------------------------------------------------------------------

GiB = 1024 * MiB


def w(name: str, free_mib: int = 1024, **kw: object) -> AppWorker:
    fields: dict[str, object] = {"mem_total": 2 * GiB, "mem_free": free_mib * MiB, **kw}
    return AppWorker(name, **fields)  # type: ignore[arg-type]


def script(blocks: str, followup: str = "fail", default: str | None = None) -> dict[str, object]:
    text = f"- t:\n{blocks}\n  followup: {followup}\n"
    if default is not None:
        text += f"- default:\n{default}\n"
    return parse(text)


def first(valid: Sequence[AppWorker]) -> AppWorker:
    return valid[-1]  # a "random" choice the tests can tell apart from best-first


NEED = 64 * MiB
WORKERS = [w("a", 300), w("b", 900), w("c", 500)]


@pytest.mark.parametrize(
    ("blocks", "workers", "chosen"),
    [
        # best-first: the first valid one in the order listed.
        ("    - workers: [c, b, a]", WORKERS, "c"),
        ("    - workers: [c, b]", [w("a"), w("b"), w("c", alive=False)], "b"),
        # "*" lists every worker by name.
        ("    - workers: '*'", WORKERS, "a"),
        # platform: fless's own choice, the most free memory.
        ("    - workers: '*'\n      strategy: platform", WORKERS, "b"),
        # random: one of the valid ones (the injected choice takes the last).
        ("    - workers: [a, b, c]\n      strategy: random", WORKERS, "c"),
        # Labels select workers, in name order; a worker listed twice counts once.
        (
            "    - workers: [{label: cam}, a]",
            [w("a"), w("z", labels=frozenset({"cam"})), w("m", labels=frozenset({"cam"}))],
            "m",
        ),
        # Not enough memory free: skipped.
        ("    - workers: [a, b]", [w("a", 32), w("b", 900)], "b"),
        # max_concurrent_invocations counts this core's calls in flight there.
        (
            "    - workers: [a, b]\n      invalidate: {max_concurrent_invocations: 2}",
            [w("a", in_flight=2), w("b", in_flight=1)],
            "b",
        ),
        # capacity_used: the share of its memory in use once the function is placed.
        (
            "    - workers: [a, b]\n      invalidate: {capacity_used: '50%'}",
            [w("a", 1000), w("b", 1100)],  # a: (2048-1000+64)/2048 = 54%; b: 49%
            "b",
        ),
        # Affinity: the worker hosts a function of that tag; !tag: it hosts none.
        (
            "    - workers: [a, b]\n      affinity: [db]",
            [w("a"), w("b", hosts=frozenset({"db"}))],
            "b",
        ),
        (
            "    - workers: [a, b]\n      affinity: ['!noisy']",
            [w("a", hosts=frozenset({"noisy"})), w("b")],
            "b",
        ),
        # Blocks are tried in order: the first with a valid worker decides.
        ("    - workers: [x]\n    - workers: [c]\n    - workers: [b]", WORKERS, "c"),
    ],
    ids=[
        "best-first",
        "best-first-skips-dead",
        "star",
        "platform",
        "random",
        "labels",
        "memory",
        "max-concurrent",
        "capacity-used",
        "affinity",
        "anti-affinity",
        "blocks-in-order",
    ],
)
def test_each_rule_places_the_call(blocks: str, workers: list[AppWorker], chosen: str) -> None:
    assert place(script(blocks), "t", NEED, workers, first).worker == chosen


def test_no_block_fits_with_followup_fail_says_why_block_by_block() -> None:
    placed = place(
        script("    - workers: [a]\n    - workers: [b, gone]\n      affinity: [db]"),
        "t",
        NEED,
        [w("a", alive=False), w("b")],
        first,
    )
    assert placed.worker is None
    assert placed.reasons == (
        "t block 1: a: not alive",
        "t block 2: b: hosts no function tagged 'db'",
    )


def test_followup_default_tries_the_default_tag_next() -> None:
    blocks = "    - workers: [a]"
    default = "    - workers: '*'\n      strategy: platform"
    workers = [w("a", alive=False), w("b", 100), w("c", 700)]
    assert place(script(blocks, "default", default), "t", NEED, workers, first).worker == "c"
    # With followup fail, the default tag is not tried.
    failed = place(script(blocks, "fail", default), "t", NEED, workers, first)
    assert failed.worker is None and failed.reasons == ("t block 1: a: not alive",)


def test_a_block_naming_no_known_worker_says_so() -> None:
    placed = place(script("    - workers: [{label: gpu}, ghost]"), "t", NEED, WORKERS, first)
    assert placed.reasons == ("t block 1: no worker known matches label gpu, ghost",)


def test_the_tag_is_the_functions_else_default_else_the_call_fails() -> None:
    parsed = parse(EXAMPLE)
    workers = [w("pi-camera-1", 100), w("pi-camera-2"), w("big", 1500)]
    assert place(parsed, "camera", NEED, workers, first).worker == "pi-camera-1"
    # No such tag, or none: the default tag's blocks (platform: most free memory).
    assert place(parsed, "other", NEED, workers, first).worker == "big"
    assert place(parsed, None, NEED, workers, first).worker == "big"
    only_camera = parse("- camera: [{workers: [pi-camera-1]}]")
    with pytest.raises(NoTag, match="no tag 'other' and no 'default' tag"):
        place(only_camera, "other", NEED, workers, first)
