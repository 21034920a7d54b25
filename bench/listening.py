"""`!hi` latency while transcriptions run, and end-to-end voice-message latency.

Starts the local Discord server and the real bot, sends two voice messages
(the shared JFK recording when present, otherwise synthesised speech) and keeps
sending `!hi` until both transcripts are back.  Target (issue 5): p99 <= 100 ms.
Run: .venv/bin/python bench/listening.py
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from localdiscord import BotProcess, FakeDiscord  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "speech" / "jfk_voice.ogg"


def voice_message() -> bytes:
    if SHARED.exists():
        return SHARED.read_bytes()
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(["espeak-ng", "-w", str(tmp / "s.wav"), "ask not what your country can do for you " * 3], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp / "s.wav"), "-c:a", "libopus", str(tmp / "s.ogg")], check=True)
    return (tmp / "s.ogg").read_bytes()


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def main() -> None:
    audio = voice_message()
    fake = FakeDiscord()
    await fake.start()
    bot = BotProcess(fake, Path(tempfile.mkdtemp(prefix="bench-listen-")))
    await bot.start()
    try:
        for _ in range(10):
            await fake.reply_to(await fake.send(fake.bob, "!hi"))
        t0 = time.perf_counter()
        first = await fake.send(fake.alice, "", attachments=[("voice-message.ogg", audio, "audio/ogg")])
        await fake.reply_to(first, lambda m: "said" in m.text, timeout=120)
        cold = time.perf_counter() - t0

        latencies = []
        sent_at = time.perf_counter()
        voices = [await fake.send(fake.alice, "", attachments=[("voice-message.ogg", audio, "audio/ogg")])
                  for _ in range(2)]
        waits = [asyncio.create_task(fake.reply_to(v, lambda m, v=v: m.reference_id == v.id, timeout=120))
                 for v in voices]
        while not all(w.done() for w in waits):
            t = time.perf_counter()
            await fake.reply_to(await fake.send(fake.bob, "!hi"), lambda m: "Hi bob" in m.text)
            latencies.append((time.perf_counter() - t) * 1000)
        both = time.perf_counter() - sent_at
    finally:
        await bot.stop()
        await fake.stop()
    print(f"first voice message (cold model) to reply  {cold:6.2f} s")
    print(f"two voice messages (warm) to both replies  {both:6.2f} s")
    print(f"!hi while transcribing: n={len(latencies)}  p50 {pct(latencies, 50):6.1f} ms  "
          f"p99 {pct(latencies, 99):6.1f} ms  max {max(latencies):6.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
