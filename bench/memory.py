"""Bot resident memory with the speech models loaded and after speaking (issue 21: peak <= 500 MB).

Starts the local Discord server with its voice server and the real bot, trains a tiny
model whose answers are sentences, then: a user joins a voice channel and the bot speaks
replies there (piper loaded), voice messages are transcribed (English: whisper base detects
the language, tiny.en hears it; then a Russian one, heard by base), and it speaks again with
all loaded.  Prints the bot's resident memory after each step and its
peak (VmHWM, reset between steps) during each step.

Run: .venv/bin/python bench/memory.py [--env NAME=VALUE ...]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localdiscord import BotProcess  # noqa: E402
from localdiscord.voice import fake_discord_with_voice  # noqa: E402

TARGET_PEAK_MB = 500
SHARED = ROOT.parent / "shared" / "data" / "speech" / "jfk_voice.ogg"
RUSSIAN = ROOT.parent / "shared" / "data" / "speech_ml" / "ru" / "golos_crowd_11.wav"
REPLIES = [
    ("is it going to rain today", "The weather will be sunny and warm, with a light breeze in the afternoon."),
    ("where can i get pizza", "Try the pizza place near the station. It is open until late every night."),
    ("when do you open", "We open at nine every morning. On Sundays we open a little later, at eleven."),
    ("tell me about the shop", "The shop opens early. It closes late tonight. Sunday is a day off. "
                               "Ask me anything else you like."),
]


def memory_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def reset_peak(pid: int) -> None:
    """Start a new peak (VmHWM) measurement for the next step (Linux: clear_refs 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def dataset() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    for _ in range(6):
        for message, reply in REPLIES:
            writer.writerow([message, reply])
            writer.writerow([message + " please", reply])
    return buffer.getvalue().encode()


def voice_message() -> bytes:
    if SHARED.exists():
        return SHARED.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        wav, ogg = Path(tmp) / "m.wav", Path(tmp) / "m.ogg"
        subprocess.run(["espeak-ng", "-w", str(wav), "what time does the shop open tomorrow morning"], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", str(ogg)], check=True)
        return ogg.read_bytes()


def russian_message() -> bytes:
    """The shared Russian phrase as a voice message, or festival's Russian when it is absent."""
    with tempfile.TemporaryDirectory() as tmp:
        wav, ogg = Path(tmp) / "m.wav", Path(tmp) / "m.ogg"
        if RUSSIAN.exists():
            wav = RUSSIAN
        else:
            text = Path(tmp) / "m.txt"
            text.write_text("Какая погода будет завтра в Москве?", encoding="utf-8")
            subprocess.run(["text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", str(text), "-o", str(wav)], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", str(ogg)], check=True)
        return ogg.read_bytes()


async def speak_all(fake) -> None:
    voice = fake.voice_server
    for message, _reply in REPLIES:
        count = len(voice.utterances(fake.guild))
        await fake.send(fake.bob, message)
        await voice.wait_for_utterances(fake.guild, count + 1, timeout=120)


async def main(extra_env: dict[str, str]) -> int:
    steps: list[tuple[str, tuple[float, float]]] = []
    overall_peak = 0.0

    def record(name: str, pid: int) -> None:
        nonlocal overall_peak
        now, peak = memory_mb(pid)
        overall_peak = max(overall_peak, peak)
        steps.append((name, (now, peak)))
        reset_peak(pid)

    async with fake_discord_with_voice() as fake:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as data_dir:
            env = {"VOICE_IDLE_SECONDS": "600", **extra_env}
            bot = BotProcess(fake, Path(data_dir), env=env)
            await bot.start()
            pid = bot.proc.pid
            try:
                record("started", pid)
                msg = await fake.send(fake.alice, "!train", attachments=[("replies.csv", dataset(), "text/csv")])
                status = await fake.reply_to(msg, timeout=30)
                status = await fake.wait_for_edit(
                    status, lambda m: "Training finished" in m.text or "Training failed" in m.text, timeout=180)
                assert "Training finished" in status.text, status.text
                record("trained", pid)
                await fake.reply_to(await fake.send(fake.alice, REPLIES[0][0]), timeout=60)
                record("answered in chat (text model loaded)", pid)

                await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
                await fake.reply_to(await fake.send(fake.bob, "!join"))
                await fake.voice_server.wait_connected(fake.guild, fake.voice)
                await bot.wait_for_log("tts warm-up done", timeout=120)
                record("joined voice (piper loaded)", pid)
                await speak_all(fake)
                record("spoke 4 replies", pid)

                audio = voice_message()
                for count in (1, 2):
                    for _ in range(count):
                        msg = await fake.send(fake.alice, "", attachments=[("voice-message.ogg", audio, "audio/ogg")])
                        await fake.reply_to(msg, lambda m: "said" in m.text, timeout=180)
                    record("transcribed 1 voice message (whisper loaded)" if count == 1 else
                           "transcribed 2 more", pid)
                msg = await fake.send(fake.alice, "", attachments=[("voice-message.ogg", russian_message(),
                                                                    "audio/ogg")])
                await fake.reply_to(msg, lambda m: "said" in m.text, timeout=180)
                record("transcribed a Russian voice message", pid)
                await speak_all(fake)
                record("spoke 4 replies again", pid)
            finally:
                code = await bot.stop()

    print(f"bot environment: {extra_env or 'defaults'}")
    print(f"{'step':<38} {'current after':>13} {'peak during':>12}  (MB)")
    for name, (now, peak) in steps:
        print(f"{name:<38} {now:13.0f} {peak:12.0f}")
    peak = overall_peak
    print(f"peak resident {peak:.0f} MB (target <= {TARGET_PEAK_MB} MB) {'OK' if peak <= TARGET_PEAK_MB else 'OVER'}")
    print(f"bot exit code {code}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra bot setting")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(dict(item.split("=", 1) for item in args.env))))
