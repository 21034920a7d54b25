"""Spoken replies: latency to the first voice packet, gaps inside an utterance, bot memory.

Starts the local Discord server with its voice server and the real bot process,
trains a tiny model whose answers are sentences (the chat path speaks the model's
answer), puts a user in a voice channel, and measures from the user's message to
the first RTP packet the voice server receives:

  * uncached, piper: each reply spoken for the first time  (target <= 1.0 s)
  * cached: the same replies again                          (target <= 0.3 s)
  * largest gap between packets of one utterance            (target <= 60 ms)
  * bot resident memory before any speech model, then with the TTS voice and the
    STT model loaded (a voice message makes it transcribe)  (targets <= 200 / 500 MB)

When the chat path cannot answer yet (no model), `--direct` is used automatically:
a bench-only start-up shim makes the bot call `VoiceManager.speak_reply` for messages
starting with "say ", skipping only the model's prediction and the text reply.

    .venv/bin/python bench/voice.py [--rounds 5] [--direct]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio.text_normalize import wer  # noqa: E402
from localdiscord import BotProcess  # noqa: E402
from localdiscord.botprocess import SHIM  # noqa: E402
from localdiscord.voice import fake_discord_with_voice  # noqa: E402

TARGET_UNCACHED = 1.0
TARGET_CACHED = 0.3
TARGET_GAP = 0.060
TARGET_IDLE_MB = 200
TARGET_LOADED_MB = 500

# Replies of one sentence each, and the messages that get them.
REPLIES = [
    ("is it going to rain today", "The weather will be sunny and warm."),
    ("where can i get pizza", "Try the pizza place near the station."),
    ("good morning", "Hello, nice to see you again."),
    ("when do you open", "We open at nine every morning."),
    ("who are you", "I am a friendly bot that can talk."),
    ("what day is it", "Today is a good day for a walk."),
    ("tell me a joke", "Why did the chicken cross the road?"),
    ("thank you", "You are welcome, any time."),
]
LONG = ("tell me about the shop", "The shop opens early. It closes late tonight. Sunday is a day off. "
                                   "Ask me anything else you like.")

DIRECT_SHIM = '''
import os, runpy
runpy.run_path(os.path.join({shim!r}, "sitecustomize.py"))  # point discord.py at the fake server
import commands.voice as _voice
_init = _voice.VoiceManager.__init__
def _bench_init(self, bot):
    _init(self, bot)
    async def on_message(message):
        if message.content.startswith("say "):
            await self.speak_reply(message, message.content[4:])
    bot.add_listener(on_message, "on_message")
_voice.VoiceManager.__init__ = _bench_init
'''


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB."""
    proc = psutil.Process(pid)
    current = proc.memory_info().rss / 2**20
    peak = current
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return current, peak


def dataset() -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    for _ in range(6):
        for message, reply in REPLIES + [LONG]:
            writer.writerow([message, reply])
            writer.writerow([message + " please", reply])
    return buffer.getvalue().encode()


def voice_message(text: str) -> bytes:
    tmp = Path(tempfile.mkdtemp(prefix="bench-voice-msg-"))
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp / "m.wav"), text], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp / "m.wav"), "-c:a", "libopus", str(tmp / "m.ogg")],
                   check=True)
    return (tmp / "m.ogg").read_bytes()


async def train(fake) -> bool:
    """Train the model through `!train`; False when the chat path can't answer with it."""
    msg = await fake.send(fake.alice, "!train", attachments=[("bench.csv", dataset(), "text/csv")])
    try:
        status = await fake.reply_to(msg, timeout=15)
        status = await fake.wait_for_edit(
            status, lambda m: "Training finished" in m.text or "Training failed" in m.text, timeout=120)
        if "Training finished" not in status.text:
            return False
        probe = await fake.send(fake.alice, REPLIES[0][0])
        answer = await fake.reply_to(probe, timeout=15)
        return answer.content == REPLIES[0][1]
    except AssertionError:
        return False


async def start_bot(fake, direct: bool) -> BotProcess:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    env = {"CONFIDENCE_THRESHOLD": "0", "VOICE_IDLE_SECONDS": "600", "PLAYBACK_QUEUE_SIZE": "20"}
    if direct:
        shim_dir = Path(tempfile.mkdtemp(prefix="bench-voice-shim-"))
        (shim_dir / "sitecustomize.py").write_text(DIRECT_SHIM.format(shim=str(SHIM)))
        env["PYTHONPATH"] = os.pathsep.join([str(shim_dir), str(ROOT)])
    bot = BotProcess(fake, data_dir, env=env)
    started = time.perf_counter()
    await bot.start()
    print(f"bot ready in {time.perf_counter() - started:.2f} s")
    return bot


async def speak(fake, message: str, direct: bool) -> tuple[float, object]:
    """Send `message` as bob; returns (seconds to the first voice packet, utterance)."""
    voice = fake.voice_server
    count = len(voice.utterances(fake.guild))
    text = f"say {message}" if direct else message
    sent = time.monotonic()
    await fake.send(fake.bob, text)
    heard = (await voice.wait_for_utterances(fake.guild, count + 1, timeout=60))[count]
    return heard.started - sent, heard


async def main(rounds: int, force_direct: bool) -> int:
    async with fake_discord_with_voice() as fake:
        direct = force_direct
        bot = await start_bot(fake, direct)
        try:
            before_mb = rss_mb(bot.proc.pid)
            if not direct and not await train(fake):
                print("the chat path can't answer with a trained model yet: using --direct (speak_reply only)")
                await bot.stop()
                direct = True
                bot = await start_bot(fake, direct)
                before_mb = rss_mb(bot.proc.pid)
            trained_mb = rss_mb(bot.proc.pid)
            mode = "direct speak_reply (no model prediction)" if direct else "chat path (model answer)"
            print(f"mode: {mode}")

            await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
            await fake.reply_to(await fake.send(fake.bob, "!join"))
            await fake.voice_server.wait_connected(fake.guild, fake.voice)
            await bot.wait_for_log("tts warm-up done", timeout=60)
            joined_mb = rss_mb(bot.proc.pid)

            replies = REPLIES[:rounds]
            results: dict[str, list[float]] = {"uncached": [], "cached": []}
            gaps: list[float] = []
            errors: list[float] = []
            for kind in ("uncached", "cached"):
                for message, reply in replies:
                    latency, heard = await speak(fake, reply if direct else message, direct)
                    results[kind].append(latency)
                    gaps.append(heard.max_gap)
                    if kind == "uncached":
                        errors.append(wer(reply, await heard.transcribe()))
            _latency, long_heard = await speak(fake, LONG[1] if direct else LONG[0], direct)
            long_gap = long_heard.max_gap
            long_wer = wer(LONG[1], await long_heard.transcribe())
            tts_mb = rss_mb(bot.proc.pid)

            audio = voice_message("what time does the shop open tomorrow")
            msg = await fake.send(fake.alice, "", attachments=[("voice-message.ogg", audio, "audio/ogg")])
            await fake.reply_to(msg, lambda m: "said" in m.text, timeout=120)
            loaded_mb = rss_mb(bot.proc.pid)
        finally:
            code = await bot.stop()

    def row(name: str, values: list[float], target: float, unit: str = "s") -> None:
        scale = 1000 if unit == "ms" else 1
        worst = max(values)
        print(f"{name:<40} median {statistics.median(values) * scale:7.3f} {unit}  max {worst * scale:7.3f} {unit}"
              f"  (target <= {target * scale:g} {unit}) {'OK' if worst <= target else 'OVER'}")

    print(f"\nfrom the user's message to the first voice packet, {len(replies)} one-sentence replies:")
    row("uncached (piper)", results["uncached"], TARGET_UNCACHED)
    row("cached", results["cached"], TARGET_CACHED)
    row("largest gap inside an utterance", gaps, TARGET_GAP, "ms")
    row(f"largest gap, {len(LONG[1].split('. '))}-sentence reply", [long_gap], TARGET_GAP, "ms")
    print(f"{'round-trip WER (piper -> opus -> whisper)':<40} mean {statistics.mean(errors):.2f}, "
          f"4-sentence reply {long_wer:.2f}")
    print("\nbot resident memory (current / peak MB):")
    for name, (now, peak), target in (("started, no speech model", before_mb, TARGET_IDLE_MB),
                                      ("trained (text model loaded)" if not direct else "(no training)",
                                       trained_mb, None),
                                      ("after !join (TTS voice loaded)", joined_mb, None),
                                      ("after speaking", tts_mb, None),
                                      ("TTS + STT models loaded", loaded_mb, TARGET_LOADED_MB)):
        verdict = f"(target <= {target} MB) {'OK' if peak <= target else 'OVER'}" if target else ""
        print(f"  {name:<38} {now:6.0f} / {peak:6.0f}  {verdict}")
    print(f"\nbot exit code {code}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="one-sentence replies per measurement (max 8)")
    parser.add_argument("--direct", action="store_true", help="speak through speak_reply without the model")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(min(args.rounds, len(REPLIES)), args.direct)))
