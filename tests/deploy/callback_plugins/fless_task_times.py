"""An Ansible callback for the rollout tests: the slowest tasks of a run, at its end."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):  # type: ignore[misc]
    """Adds up the wall time of each task (over every host and loop) and prints the top."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fless_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._times: dict[str, float] = defaultdict(float)
        self._task: str | None = None
        self._since = 0.0

    def _switch(self, task: Any) -> None:
        now = time.monotonic()
        if self._task is not None:
            self._times[self._task] += now - self._since
        self._task = None if task is None else f"{task.get_name()}"
        self._since = now

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._switch(task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._switch(task)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._switch(None)
        slowest = sorted(self._times.items(), key=lambda item: -item[1])[:10]
        lines = [f"{seconds:7.1f} s  {name}" for name, seconds in slowest]
        self._display.display("TASK TIMES (slowest)\n" + "\n".join(lines))
