"""Fair sharing of a few worker slots between many scopes (servers, DM users).

One busy server sending ten voice messages at once must not delay every other
server behind them.  Jobs therefore wait per scope and are started round-robin:
the next free slot goes to the waiting scope served longest ago (a scope that
was idle goes first), so a newcomer waits for at most one job per other busy
scope.  Waiting is bounded twice: per scope (``per_scope``) and overall
(``max_waiting``).  When the whole queue is full, a newcomer pushes out the
newest waiting job of the scope holding the most, if that scope holds more than
its share; otherwise the newcomer is refused.  Every refusal is ``errors.Busy``
with ``retry_after`` estimated from the queue and the measured job time.

Pure asyncio and single-threaded: call everything from the event loop.  The
caller runs the job itself between ``await ticket.wait()`` and ``ticket.release()``
(or uses ``async with queue.turn(scope)``); a long job made of parts calls
``await ticket.pass_turn()`` between them, so it takes turns with other scopes too.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, Hashable

from errors import Busy, Phrase, UserError, format_wait

__all__ = ["FairQueue", "Ticket"]

_WAITING, _RUNNING, _DONE = "waiting", "running", "done"


class Ticket:
    """One job's place: waiting for a slot, holding one, or done."""

    def __init__(self, queue: "FairQueue", scope: Hashable, granted: asyncio.Future) -> None:
        self.queue = queue
        self.scope = scope
        self._granted = granted
        self.state = _WAITING
        self.started: float | None = None

    @property
    def granted(self) -> bool:
        """Whether this job holds a slot now (its turn has come)."""
        return self.state == _RUNNING

    async def wait(self) -> None:
        """Wait for this job's turn; raises Busy if it was pushed out meanwhile.

        A cancelled wait leaves the queue (or gives back the slot it was just given)."""
        try:
            await asyncio.shield(self._granted)
        except BaseException:
            self.cancel()  # nothing to undo when it was pushed out: it is done already
            raise

    async def pass_turn(self) -> None:
        """Between two parts of a long job: let every scope waiting now go first, then go on.

        Keeps the slot when no other scope waits; otherwise this job waits at the head of its
        own scope's queue, so its scope's later jobs never overtake it."""
        if self.queue._requeue(self):
            await self.wait()

    def release(self) -> None:
        """The job finished (or was abandoned): give its slot to the next scope in turn."""
        self.queue._finish(self)

    def cancel(self) -> None:
        """Leave the queue without running; same as ``release`` once the slot was granted."""
        self.queue._finish(self)


class _Scope:
    __slots__ = ("waiting", "running", "last_served")

    def __init__(self) -> None:
        self.waiting: deque[Ticket] = deque()
        self.running = 0
        self.last_served = 0  # 0: never served while known, so it goes before every served scope


class FairQueue:
    """Round-robin admission of jobs from many scopes to ``slots`` workers."""

    def __init__(self, slots: int, per_scope: int, max_waiting: int, *, job_seconds: float = 10.0,
                 busy_message: str = Phrase("I'm busy with other requests; please try again in {wait}."),
                 clock: Callable[[], float] = time.monotonic) -> None:
        if slots < 1 or per_scope < 0 or max_waiting < 0:
            raise ValueError("slots must be >= 1, per_scope and max_waiting >= 0")
        self.slots = slots
        self.per_scope = per_scope
        self.max_waiting = max_waiting
        self.busy_message = busy_message
        self.job_seconds = job_seconds  # running estimate of one job's duration
        self._clock = clock
        self._scopes: dict[Hashable, _Scope] = {}
        self._running: set[Ticket] = set()
        self._waiting = 0
        self._served = itertools.count(1)

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return self._waiting

    def waiting_of(self, scope: Hashable) -> int:
        state = self._scopes.get(scope)
        return len(state.waiting) if state else 0

    def running_of(self, scope: Hashable) -> int:
        state = self._scopes.get(scope)
        return state.running if state else 0

    # ------------------------------------------------------------------ admission
    def admit(self, scope: Hashable) -> Ticket:
        """Queue a job for ``scope`` (started at once when a slot is free), or raise Busy."""
        state = self._scopes.get(scope)
        mine = len(state.waiting) if state else 0
        if self._has_free_slot():
            pass  # it starts at once: no waiting place needed
        elif mine >= self.per_scope:
            raise self._busy(self._wait_for_turn(scope), f"scope {scope!r} has {mine} waiting")
        elif self._waiting >= self.max_waiting:
            victim = self._largest_other(scope)
            if victim is None or len(self._scopes[victim].waiting) <= mine + 1:
                raise self._busy(self._wait_for_a_start(), f"queue full ({self._waiting} waiting)")
            pushed = self._scopes[victim].waiting.pop()  # its newest job: it waited least
            self._waiting -= 1
            pushed.state = _DONE
            pushed._granted.set_exception(
                self._busy(self._wait_for_turn(victim), f"pushed out of a full queue by {scope!r}"))
        if state is None:
            state = self._scopes[scope] = _Scope()
        ticket = Ticket(self, scope, asyncio.get_running_loop().create_future())
        state.waiting.append(ticket)
        self._waiting += 1
        self._dispatch()
        return ticket

    @asynccontextmanager
    async def turn(self, scope: Hashable) -> AsyncIterator[Ticket]:
        """``async with queue.turn(scope):`` run one job in its turn (Busy when refused)."""
        ticket = self.admit(scope)
        await ticket.wait()
        try:
            yield ticket
        finally:
            ticket.release()

    def close(self, error: UserError) -> None:
        """Fail every waiting job with ``error`` (shutting down); running jobs finish."""
        for state in list(self._scopes.values()):
            while state.waiting:
                ticket = state.waiting.popleft()
                self._waiting -= 1
                ticket.state = _DONE
                if not ticket._granted.done():
                    ticket._granted.set_exception(error)
        self._forget_idle()

    # ------------------------------------------------------------------ internals
    def _has_free_slot(self) -> bool:
        return len(self._running) < self.slots and self._waiting == 0

    def _dispatch(self) -> None:
        while len(self._running) < self.slots and self._waiting:
            scope = min((s for s, st in self._scopes.items() if st.waiting),
                        key=lambda s: self._scopes[s].last_served)
            state = self._scopes[scope]
            ticket = state.waiting.popleft()
            self._waiting -= 1
            state.running += 1
            state.last_served = next(self._served)
            ticket.state = _RUNNING
            ticket.started = self._clock()
            self._running.add(ticket)
            ticket._granted.set_result(None)

    def _finish(self, ticket: Ticket) -> None:
        state = self._scopes.get(ticket.scope)
        if ticket.state == _WAITING and state is not None:
            state.waiting.remove(ticket)
            self._waiting -= 1
            ticket._granted.cancel()
        elif ticket.state == _RUNNING and state is not None:
            self._running.discard(ticket)
            state.running -= 1
            if ticket.started is not None:
                took = max(0.0, self._clock() - ticket.started)
                self.job_seconds = 0.7 * self.job_seconds + 0.3 * took
        ticket.state = _DONE
        self._forget_idle()
        self._dispatch()

    def _requeue(self, ticket: Ticket) -> bool:
        """Put a running ticket back at the head of its scope's queue if another scope waits."""
        if ticket.state != _RUNNING:
            raise RuntimeError("only a running job can pass its turn")
        if not any(st.waiting for s, st in self._scopes.items() if s != ticket.scope):
            return False
        state = self._scopes[ticket.scope]
        self._running.discard(ticket)
        state.running -= 1
        if ticket.started is not None:
            self.job_seconds = 0.7 * self.job_seconds + 0.3 * max(0.0, self._clock() - ticket.started)
        ticket.state = _WAITING
        ticket._granted = asyncio.get_running_loop().create_future()
        state.waiting.appendleft(ticket)
        self._waiting += 1
        self._dispatch()
        return True

    def _forget_idle(self) -> None:
        for scope in [s for s, st in self._scopes.items() if not st.waiting and not st.running]:
            del self._scopes[scope]

    def _largest_other(self, scope: Hashable) -> Hashable | None:
        """The scope (not ``scope``) with the most waiting jobs; of equals, the one served last."""
        others = [(len(st.waiting), st.last_served, s) for s, st in self._scopes.items() if s != scope and st.waiting]
        return max(others, key=lambda o: (o[0], o[1]))[2] if others else None

    def _first_slot_free(self) -> float:
        """Seconds until some running job should end, by the measured job time."""
        if len(self._running) < self.slots:
            return 0.0
        now = self._clock()
        return max(0.0, min(self.job_seconds - (now - t.started) for t in self._running if t.started is not None))

    def _wait_for_a_start(self) -> float:
        """Until the next waiting job starts, freeing a waiting place."""
        return self._first_slot_free()

    def _wait_for_turn(self, scope: Hashable) -> float:
        """Until ``scope``'s oldest waiting job starts: the scopes before it in the round go first."""
        state = self._scopes.get(scope)
        if state is None or not state.waiting:
            return self._first_slot_free()
        ahead = sum(1 for s, st in self._scopes.items()
                    if s != scope and st.waiting and st.last_served < state.last_served)
        return self._first_slot_free() + ahead * self.job_seconds / self.slots

    def _busy(self, retry_after: float, detail: str) -> Busy:
        retry_after = max(1.0, retry_after)
        message = Phrase(self.busy_message, wait=format_wait(retry_after))  # said in the reader's language
        return Busy(message, retry_after=retry_after, detail=detail)
