# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback for make bench: the wall time of every task of a run, written as JSON to $NETFLEET_BENCH_TIMER."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: Per-task wall times for make bench
description:
  - Writes the wall time of every task (from its start to the next task's start or the end of the run) as
    JSON to the file named by the environment variable E(NETFLEET_BENCH_TIMER).
  - Used only by the benchmarks in bench/; not part of the collection.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks: list[dict] = []
        self.current: dict | None = None

    def _close(self) -> None:
        if self.current is not None:
            self.current["seconds"] = time.perf_counter() - self.current.pop("start")
            self.tasks.append(self.current)
            self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = {"name": task.get_name(), "start": time.perf_counter()}

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("NETFLEET_BENCH_TIMER")
        if path:
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"tasks": self.tasks}, f)
