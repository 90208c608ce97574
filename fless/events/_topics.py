"""What an MQTT topic may be, and the error a binding is refused with.

Apart from the rest of the binding rules (``_specs``) so that the CLI checks
a topic as the core does without loading what a core needs (croniter takes
55 ms to import).
"""

from __future__ import annotations

# MQTT's limit on a topic (an encoded string's length is two bytes).
MAX_TOPIC_BYTES = 65535


class Refused(ValueError):
    """One binding cannot be kept; the message says why, for the client."""


def check_topic(topic: str, wildcards: bool) -> None:
    """Refuses a topic MQTT would refuse, or a filter where a plain topic is needed.

    Raises:
        Refused: empty, too long, a NUL, or a misplaced ``+`` or ``#``.
    """
    if not topic:
        raise Refused("params.topic is empty")
    if len(topic.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES or "\0" in topic:
        raise Refused("params.topic is too long or holds a NUL character")
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused("params.topic is not valid Unicode text") from None
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "+" not in level and "#" not in level:
            continue
        if not wildcards:
            raise Refused(
                f"params.topic {topic!r} has a wildcard (+ or #): a sink publishes to one topic"
            )
        if "+" in level and level != "+":
            raise Refused(f"params.topic {topic!r}: '+' must be a whole topic level, not {level!r}")
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise Refused(f"params.topic {topic!r}: '#' must be the whole last topic level")
