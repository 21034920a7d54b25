"""Fair transcription between servers: one server's flood must not hold up another (issue 9).

Starts the local Discord server (two guilds) and the real bot.  Server B's time from
sending a voice message to its transcript is measured on an idle bot, then while server A
has just uploaded ten voice messages at once (B sends 0.2 s after A).  Targets: B's time
during the flood <= 2x its idle time; every one of A's messages gets a transcript or a
"busy, try again in N s" reply, none unanswered.  Voice message: the shared JFK recording
(11 s) when present, otherwise synthesised speech.

Run: .venv/bin/python bench/fairness.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from localdiscord import BotProcess, FakeDiscord  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "speech" / "jfk_voice.ogg"
FLOOD = 10
TARGET_RATIO = 2.0


def voice_message() -> bytes:
    if SHARED.exists():
        return SHARED.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        wav, ogg = Path(tmp) / "s.wav", Path(tmp) / "s.ogg"
        subprocess.run(["espeak-ng", "-w", str(wav), "ask not what your country can do for you " * 3], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", str(ogg)], check=True)
        return ogg.read_bytes()


def second_guild(fake: FakeDiscord):
    """Server B: the local server's second guild, or one made here if it has none."""
    guild = getattr(fake, "guild2", None)
    if guild is None:
        carol = fake.add_user("carol")
        guild = fake.add_guild("Other Guild", owner=carol, members=[fake.bob])
    return fake.text_channel(guild, "general")


async def send_voice(fake: FakeDiscord, channel, audio: bytes, name: str):
    return await fake.send(fake.bob, "", channel=channel, attachments=[(name, audio, "audio/ogg")],
                           voice_message=True, duration=11.0)


async def reply_of(fake: FakeDiscord, msg, timeout: float = 300):
    return await fake.wait_for_message(lambda m: m.reference_id == msg.id, timeout=timeout)


async def timed_transcript(fake: FakeDiscord, channel, audio: bytes) -> float:
    started = time.perf_counter()
    msg = await send_voice(fake, channel, audio, "b.ogg")
    reply = await reply_of(fake, msg)
    assert "said" in reply.text, reply.text
    return time.perf_counter() - started


async def main(rounds: int) -> int:
    audio = voice_message()
    fake = FakeDiscord()
    await fake.start()
    channel_b = second_guild(fake)
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as data_dir:
        bot = BotProcess(fake, Path(data_dir))
        await bot.start()
        try:
            cold = await timed_transcript(fake, channel_b, audio)  # loads the model
            idle = [await timed_transcript(fake, channel_b, audio) for _ in range(3)]
            flood_results = []
            for _round in range(rounds):
                flood = [await send_voice(fake, fake.general, audio, f"a{i}.ogg") for i in range(FLOOD)]
                flood_replies = [asyncio.create_task(reply_of(fake, m)) for m in flood]
                await asyncio.sleep(0.2)
                b_time = await timed_transcript(fake, channel_b, audio)
                outcomes = {"transcript": 0, "busy": 0, "other": 0, "unanswered": 0}
                for task in flood_replies:
                    try:
                        text = (await task).text
                    except AssertionError:
                        outcomes["unanswered"] += 1
                        continue
                    key = "transcript" if "said" in text else "busy" if "busy" in text and "try again in" in text \
                        else "other"
                    outcomes[key] += 1
                flood_results.append((b_time, outcomes))
        finally:
            code = await bot.stop()
    await fake.stop()

    idle_median = statistics.median(idle)
    print(f"voice message: {'shared jfk_voice.ogg (11 s)' if SHARED.exists() else 'synthesised'}")
    print(f"server B, first voice message (loads the model)   {cold:6.2f} s")
    print(f"server B on an idle bot, median of {len(idle)}              {idle_median:6.2f} s  "
          f"({', '.join(f'{t:.2f}' for t in idle)})")
    worst = 0.0
    for index, (b_time, outcomes) in enumerate(flood_results, 1):
        ratio = b_time / idle_median
        worst = max(worst, ratio)
        print(f"round {index}: server A sends {FLOOD} at once, B 0.2 s later: B {b_time:6.2f} s = {ratio:4.2f}x idle"
              f" | A: {outcomes['transcript']} transcripts, {outcomes['busy']} busy replies,"
              f" {outcomes['other']} other, {outcomes['unanswered']} unanswered")
    answered = all(o["unanswered"] == 0 and o["other"] == 0 for _b, o in flood_results)
    print(f"worst B ratio {worst:.2f}x (target <= {TARGET_RATIO:g}x) {'OK' if worst <= TARGET_RATIO else 'OVER'};"
          f" every A message answered with a transcript or busy: {'OK' if answered else 'NO'}")
    print(f"bot exit code {code}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="flood rounds")
    sys.exit(asyncio.run(main(parser.parse_args().rounds)))
