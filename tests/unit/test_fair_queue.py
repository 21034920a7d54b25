"""FairQueue: round-robin order between scopes, per-scope and global caps, push-out, retry estimates.

Deterministic: the clock is a variable, slots are granted synchronously (a ticket's
``granted`` is read right after ``admit``/``release``), nothing sleeps.
"""

from __future__ import annotations

import asyncio

import pytest

from audio.fair_queue import FairQueue
from errors import Busy, UserError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def started_order(queue: FairQueue, tickets: list, finish_each: float = 0.0, clock: Clock | None = None) -> list:
    """Release running tickets one at a time (the oldest first) and record who starts, in order."""
    order = []
    pending = list(tickets)
    while pending:
        running = [t for t in pending if t.granted]
        assert running, "nothing runs although jobs wait"
        ticket = running[0]
        order.append(ticket.scope)
        pending.remove(ticket)
        if clock is not None:
            clock.now += finish_each
        ticket.release()
    return order


async def test_a_free_slot_is_granted_at_once():
    queue = FairQueue(slots=2, per_scope=1, max_waiting=1)
    first, second = queue.admit("a"), queue.admit("a")
    assert first.granted and second.granted and queue.running == 2 and queue.waiting == 0
    third = queue.admit("a")
    assert not third.granted and queue.waiting == 1
    first.release()
    assert third.granted and queue.running == 2 and queue.waiting == 0


async def test_scopes_take_turns_and_a_newcomer_waits_for_one_job():
    queue = FairQueue(slots=1, per_scope=10, max_waiting=30)
    a = [queue.admit("A") for _ in range(6)]  # A's flood: one runs, five wait
    b = queue.admit("B")  # B arrives after the flood
    c = [queue.admit("C") for _ in range(2)]
    assert a[0].granted and not b.granted
    order = started_order(queue, a + [b] + c)
    # B and C go right after A's running job, then everyone in turn.
    assert order == ["A", "B", "C", "A", "C", "A", "A", "A", "A"]


async def test_an_idle_scope_goes_before_one_that_was_just_served():
    queue = FairQueue(slots=1, per_scope=10, max_waiting=10)
    a1, a2, a3 = queue.admit("A"), queue.admit("A"), queue.admit("A")
    a1.release()  # a2 runs
    b1 = queue.admit("B")
    a2.release()
    assert b1.granted and not a3.granted
    b1.release()
    assert a3.granted
    b2 = queue.admit("B")  # B comes back: A was served after B, so B's turn after a3
    a4 = queue.admit("A")
    a3.release()
    assert b2.granted and not a4.granted


async def test_per_scope_cap_refuses_only_that_scope():
    clock = Clock()
    queue = FairQueue(slots=1, per_scope=2, max_waiting=10, job_seconds=4.0, clock=clock)
    running, w1, w2 = (queue.admit("A") for _ in range(3))
    with pytest.raises(Busy) as refused:
        queue.admit("A")
    assert isinstance(refused.value, UserError)
    assert refused.value.retry_after == pytest.approx(4.0)
    assert "try again in 4 s" in refused.value.user_message
    other = queue.admit("B")  # another scope is still accepted
    assert queue.waiting_of("A") == 2 and queue.waiting_of("B") == 1
    assert started_order(queue, [running, w1, w2, other]) == ["A", "B", "A", "A"]


async def test_retry_after_counts_the_scopes_ahead_and_the_running_job():
    clock = Clock()
    queue = FairQueue(slots=1, per_scope=1, max_waiting=10, job_seconds=5.0, clock=clock)
    queue.admit("A")
    queue.admit("A")  # A: one running, one waiting
    queue.admit("B")
    queue.admit("C")  # B and C were never served: they go before A's waiting job
    clock.now += 2.0  # the running job is 2 s into its ~5 s
    with pytest.raises(Busy) as refused:
        queue.admit("A")
    assert refused.value.retry_after == pytest.approx(3.0 + 2 * 5.0)
    with pytest.raises(Busy) as refused_b:
        queue.admit("B")
    assert refused_b.value.retry_after == pytest.approx(3.0)


async def test_job_time_estimate_follows_measured_jobs():
    clock = Clock()
    queue = FairQueue(slots=1, per_scope=1, max_waiting=1, job_seconds=10.0, clock=clock)
    for _ in range(20):
        ticket = queue.admit("A")
        clock.now += 2.0
        ticket.release()
    assert queue.job_seconds == pytest.approx(2.0, abs=0.01)


async def test_full_queue_pushes_out_the_newest_job_of_the_scope_over_its_share():
    queue = FairQueue(slots=1, per_scope=4, max_waiting=4)
    a = [queue.admit("A") for _ in range(5)]  # one running, four waiting: the queue is full
    b = queue.admit("B")
    assert queue.waiting_of("A") == 3 and queue.waiting_of("B") == 1
    with pytest.raises(Busy):
        await a[4].wait()  # A's newest was told busy
    c = queue.admit("C")  # A still holds more than C would: A's next newest goes
    with pytest.raises(Busy):
        await a[3].wait()
    d = queue.admit("D")  # A 2 waiting is still more than D's 0 + 1
    with pytest.raises(Busy):
        await a[2].wait()
    with pytest.raises(Busy):  # A 1, B 1, C 1, D 1: equal shares, the newcomer is refused
        queue.admit("E")
    assert started_order(queue, [a[0], a[1], b, c, d]) == ["A", "B", "C", "D", "A"]


async def test_a_scope_at_its_share_is_not_pushed_out():
    queue = FairQueue(slots=1, per_scope=2, max_waiting=2)
    queue.admit("A")
    queue.admit("A")
    queue.admit("B")  # A 1, B 1 waiting: full and fair
    with pytest.raises(Busy):
        queue.admit("C")
    with pytest.raises(Busy):
        queue.admit("A")


async def test_cancelled_waiter_leaves_the_queue_and_a_granted_one_gives_its_slot_back():
    queue = FairQueue(slots=1, per_scope=3, max_waiting=3)
    first = queue.admit("A")
    waiter = asyncio.ensure_future(queue.admit("B").wait())
    later = queue.admit("C")
    await asyncio.sleep(0)  # one loop step: the waiter task is now awaiting its turn
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert queue.waiting == 1 and queue.waiting_of("B") == 0
    first.release()
    assert later.granted
    # granted, then its task is cancelled before it ran: the slot must come back
    nxt = queue.admit("D")
    task = asyncio.ensure_future(nxt.wait())
    await asyncio.sleep(0)  # one loop step: the task is awaiting its turn
    later.release()
    assert nxt.granted
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert queue.running == 0 and queue.waiting == 0


async def test_turn_context_manager_releases_on_error():
    queue = FairQueue(slots=1, per_scope=1, max_waiting=1)
    with pytest.raises(ZeroDivisionError):
        async with queue.turn("A"):
            1 / 0
    async with queue.turn("A") as ticket:
        assert ticket.granted and queue.running == 1
    assert queue.running == 0


async def test_close_fails_waiting_jobs():
    queue = FairQueue(slots=1, per_scope=2, max_waiting=2)
    running = queue.admit("A")
    waiting = queue.admit("B")
    queue.close(UserError("shutting down"))
    with pytest.raises(UserError, match="shutting down"):
        await waiting.wait()
    assert running.granted and queue.waiting == 0
    running.release()
    assert queue.running == 0


async def test_invalid_sizes():
    with pytest.raises(ValueError):
        FairQueue(slots=0, per_scope=1, max_waiting=1)
    with pytest.raises(ValueError):
        FairQueue(slots=1, per_scope=-1, max_waiting=1)


async def test_a_long_job_passes_its_turn_between_parts():
    queue = FairQueue(slots=1, per_scope=3, max_waiting=3)
    long_job = queue.admit("A")
    a_later = queue.admit("A")
    b = queue.admit("B")
    passing = asyncio.ensure_future(long_job.pass_turn())
    await asyncio.sleep(0)  # one loop step: the long job has handed its slot over
    assert b.granted and not long_job.granted and not passing.done()
    assert queue.waiting_of("A") == 2
    b.release()
    await passing  # back in turn, before A's later job
    assert long_job.granted and not a_later.granted
    long_job.release()
    assert a_later.granted


async def test_passing_the_turn_with_nobody_waiting_keeps_the_slot():
    queue = FairQueue(slots=1, per_scope=3, max_waiting=3)
    long_job = queue.admit("A")
    a_later = queue.admit("A")  # its own scope's jobs do not take the turn
    await long_job.pass_turn()
    assert long_job.granted and not a_later.granted and queue.running == 1
    with pytest.raises(RuntimeError):
        await a_later.pass_turn()  # only a running job can pass its turn


async def test_cancelled_while_passing_the_turn_leaves_the_queue():
    queue = FairQueue(slots=1, per_scope=3, max_waiting=3)
    long_job = queue.admit("A")
    b = queue.admit("B")
    passing = asyncio.ensure_future(long_job.pass_turn())
    await asyncio.sleep(0)
    passing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await passing
    assert queue.waiting == 0 and b.granted
    b.release()
    assert queue.running == 0
