"""Background tasks a service starts and does not wait for: one helper for all of them.

asyncio keeps only a weak reference to a task, so a task nobody holds can vanish mid-run;
and a failure nobody awaits is reported, if ever, as "Task exception was never retrieved"
when it is garbage-collected. `BackgroundTasks.spawn` keeps each task until it is done and
logs its failure at once, with the traceback; `cancel_all` ends the rest at shutdown.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    """The fire-and-forget tasks of one service, failures logged to its logger."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task:
        """Run ``coro`` in the background; kept until done, its failure logged."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error("Background task %s failed", task.get_name(), exc_info=error)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
