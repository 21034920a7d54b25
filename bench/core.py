"""`!hi` and `/hi` round-trip latency and the bot's memory, through the local Discord server.

Starts the fake server and the real bot process, sends 500 `!hi` one after another
and times each from the user's message to the bot's reply arriving at the server.
Then registers the slash commands (`!sync` by the owner, as the README says) and times
500 `/hi` from the INTERACTION_CREATE dispatch to the response message existing at the
server (the bot's interaction callback, type 4).
Targets (issue 3): p50 <= 10 ms, p99 <= 50 ms, RSS <= 200 MB before any speech model.
Run: .venv/bin/python bench/core.py [N]
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from localdiscord import BotProcess, FakeDiscord  # noqa: E402
from localdiscord.interactions import CommandUnavailable  # noqa: E402
from localdiscord.state import FLAG_LOADING  # noqa: E402


def answered(message) -> bool:
    """The response itself, not a deferral's "thinking" placeholder."""
    return not message.flags & FLAG_LOADING


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, n: int, latencies: list[float]) -> str:
    return (f"{name} round trip, n={n:<5}   p50 {percentile(latencies, 50):6.2f} ms   "
            f"p99 {percentile(latencies, 99):6.2f} ms   mean {statistics.mean(latencies):6.2f} ms   "
            f"max {max(latencies):6.2f} ms")


async def slash_hi_latencies(fake: FakeDiscord, n: int) -> list[float] | str:
    """`/hi` timings, or why there are none (the bot has no `/hi`, or `!sync` failed)."""
    try:
        reply = await fake.reply_to(await fake.send(fake.owner, "!sync"), timeout=30)
    except AssertionError:
        return "not available: the bot did not answer !sync"
    try:
        for _ in range(20):  # warm-up
            await (await fake.slash(fake.bob, "hi")).wait_original(answered)
    except CommandUnavailable:
        return f"not available: the bot registers no /hi (its answer to !sync: {reply.text[:120]!r})"
    latencies = []
    for _ in range(n):
        t0 = time.perf_counter()
        interaction = await fake.slash(fake.bob, "hi")
        await interaction.wait_original(answered)
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


async def main(n: int) -> None:
    fake = FakeDiscord()
    await fake.start()
    bot = BotProcess(fake, Path(tempfile.mkdtemp(prefix="bench-core-")))
    started = time.perf_counter()
    await bot.start()
    startup = time.perf_counter() - started
    rss_start = psutil.Process(bot.proc.pid).memory_info().rss / 2**20
    latencies = []
    try:
        for _ in range(20):  # warm-up
            await fake.reply_to(await fake.send(fake.bob, "!hi"))
        for _ in range(n):
            t0 = time.perf_counter()
            msg = await fake.send(fake.bob, "!hi")
            await fake.reply_to(msg)
            latencies.append((time.perf_counter() - t0) * 1000)
        rss_after = psutil.Process(bot.proc.pid).memory_info().rss / 2**20
        slash = await slash_hi_latencies(fake, n)
        rss_slash = psutil.Process(bot.proc.pid).memory_info().rss / 2**20
    finally:
        await bot.stop()
        await fake.stop()
    print(f"start-up to ready          {startup * 1000:8.0f} ms")
    print(summary("!hi", n, latencies))
    print(summary("/hi", n, slash) if isinstance(slash, list) else f"/hi round trip: {slash}")
    print(f"bot RSS after start        {rss_start:8.1f} MB")
    print(f"bot RSS after {n} commands {rss_after:8.1f} MB")
    print(f"bot RSS after the /hi runs {rss_slash:8.1f} MB")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
