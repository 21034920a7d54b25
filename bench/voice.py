"""Spoken replies: latency to the first voice packet, gaps inside an utterance, bot memory,
and what DAVE end-to-end encryption costs, beside the plaintext figures.

Starts the local Discord server with its voice server and the real bot process,
trains a tiny model whose answers are sentences (the chat path speaks the model's
answer), puts a user in a voice channel, and measures from the user's message to
the first RTP packet the voice server receives:

  * uncached, piper: each reply spoken for the first time  (target <= 1.0 s)
  * cached: the same replies again                          (target <= 0.3 s)
  * largest gap between packets of one utterance            (target <= 60 ms)
  * bot resident memory before any speech model, then with the TTS voice and the
    STT model loaded (a voice message makes it transcribe)  (targets <= 200 / 500 MB)
  * the bot's CPU time while it speaks cached replies, per second of audio (Opus encoding,
    DAVE and transport encryption: the player thread's work), and !join -> voice connected
    (-> DAVE group ready)

Everything runs twice: with DAVE (protocol version 1, the local server's listener decrypts
every frame, as Discord requires since March 2026) and in plaintext (version 0); the
difference of the CPU figures is the cost of end-to-end encryption.

When the chat path cannot answer yet (no model), `--direct` is used automatically:
a bench-only start-up shim makes the bot call `VoiceManager.speak_reply` for messages
starting with "say ", skipping only the model's prediction and the text reply.

`--russian` measures Russian replies instead (festival's voice, issue 21), with DAVE: the first
reply (festival's process starts), the others uncached with festival warm (target <= 0.3 s),
then cached; the round trip through the multilingual Whisper base (target WER <= .10); the
festival process's memory beside the bot's.

    .venv/bin/python bench/voice.py [--rounds 5] [--direct] [--modes dave,plain] [--russian]
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

from tests.support.transcripts import wer, word_errors  # noqa: E402
from localdiscord import BotProcess  # noqa: E402
from localdiscord.botprocess import SHIM  # noqa: E402
from localdiscord.voice import fake_discord_with_voice  # noqa: E402
from localdiscord.voice_connection import load_opus  # noqa: E402

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
# Russian: typical bot sentences (two with numbers, spelled out before festival speaks them).
REPLIES_RU = [
    ("привет", "Привет, рад тебя слышать."),
    ("какая будет погода", "Завтра будет солнечно и тепло."),
    ("какая точность модели", "Модель обучена, точность 93 процента."),
    ("сколько заняло обучение", "Обучение заняло 12 секунд."),
    ("что такое квазар", "Я не уверен, что понял вопрос."),
    ("когда вы открываетесь", "Мы открываемся в девять утра."),
    ("кто ты", "Я дружелюбный бот, который умеет говорить."),
    ("спасибо", "Пожалуйста, обращайтесь в любое время."),
]
TARGET_RU_WER = 0.10

DIRECT_SHIM = '''
import os, runpy
runpy.run_path(os.path.join({shim!r}, "sitecustomize.py"))  # point discord.py at the fake server
import voice.connection as _voice
_init = _voice.VoiceManager.__init__
def _bench_init(self, bot, *args, **kwargs):
    _init(self, bot, *args, **kwargs)
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


def dataset(pairs: list[tuple[str, str]] | None = None) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    for _ in range(6):
        for message, reply in pairs or REPLIES + [LONG]:
            writer.writerow([message, reply])
            writer.writerow([message + " please", reply])
    return buffer.getvalue().encode()


def voice_message(text: str) -> bytes:
    tmp = Path(tempfile.mkdtemp(prefix="bench-voice-msg-"))
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp / "m.wav"), text], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp / "m.wav"), "-c:a", "libopus", str(tmp / "m.ogg")],
                   check=True)
    return (tmp / "m.ogg").read_bytes()


async def train(fake, pairs: list[tuple[str, str]] | None = None) -> bool:
    """Train the model through `!train`; False when the chat path can't answer with it."""
    pairs = pairs or REPLIES
    msg = await fake.send(fake.alice, "!train", attachments=[("bench.csv", dataset(pairs), "text/csv")])
    try:
        status = await fake.reply_to(msg, timeout=15)
        status = await fake.wait_for_edit(
            status, lambda m: "Training finished" in m.text or "Training failed" in m.text, timeout=120)
        if "Training finished" not in status.text:
            return False
        probe = await fake.send(fake.alice, pairs[0][0])
        answer = await fake.reply_to(probe, timeout=15)
        return answer.content == pairs[0][1]
    except AssertionError:
        return False


async def start_bot(fake, direct: bool) -> BotProcess:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    env = {"VOICE_IDLE_SECONDS": "600", "PLAYBACK_QUEUE_SIZE": "20"}
    if direct:
        shim_dir = Path(tempfile.mkdtemp(prefix="bench-voice-shim-"))
        (shim_dir / "sitecustomize.py").write_text(DIRECT_SHIM.format(shim=str(SHIM)))
        env["PYTHONPATH"] = os.pathsep.join([str(shim_dir), str(ROOT)])
    bot = BotProcess(fake, data_dir, env=env)
    started = time.perf_counter()
    await bot.start()
    print(f"bot ready in {time.perf_counter() - started:.2f} s")
    return bot


def per_frame_costs(frames: int = 3000) -> dict[str, float]:
    """CPU seconds per 20 ms frame of the bot's per-packet work, measured in this process with
    the same libraries: Opus encoding, DAVE encryption (davey, in a real two-member group)
    and transport encryption (xchacha20-poly1305). The bot's process CPU is too noisy on a
    shared machine to show DAVE's share, so this is the figure to compare."""
    import math

    import davey
    import discord.opus
    import nacl.bindings

    from localdiscord import mls

    load_opus()
    encoder = discord.opus.Encoder()
    tone = b"".join(int(8000 * math.sin(2 * math.pi * 440 * i / 48000)).to_bytes(2, "little", signed=True) * 2
                    for i in range(960))
    opus_frame = encoder.encode(tone, 960)
    key = mls.ExternalSenderKey()
    bot, listener = davey.DaveSession(1, 1, 99), davey.DaveSession(1, 2, 99)
    bot.set_external_sender(key.package())
    listener.set_external_sender(key.package())
    add = mls.external_proposal(key, mls.group_id_for(99), 0, mls.add_proposal(listener.get_serialized_key_package()))
    result = bot.process_proposals(davey.ProposalsOperationType.append, mls.proposals_payload([add]))
    listener.process_welcome(result.welcome)
    bot.process_commit(result.commit)
    secret, header = bytes(32), bytes(12)

    def timed(work) -> float:
        start = time.process_time()
        for _ in range(frames):
            work()
        return (time.process_time() - start) / frames

    costs = {
        "Opus encoding": timed(lambda: encoder.encode(tone, 960)),
        "DAVE encryption (davey)": timed(lambda: bot.encrypt_opus(opus_frame)),
        "transport encryption": timed(lambda: nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            opus_frame, header, bytes(24), secret)),
    }
    encrypted = iter([bot.encrypt_opus(opus_frame) for _ in range(frames)])
    costs["DAVE decryption (a listener)"] = timed(lambda: listener.decrypt(1, davey.MediaType.audio, next(encrypted)))
    return costs


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process itself (not its ffmpeg children)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def speak(fake, message: str, direct: bool, pid: int | None = None) -> tuple[float, object, float]:
    """Send `message` as bob; returns (seconds to the first voice packet, utterance, bot CPU
    seconds from its first to its last packet)."""
    voice = fake.voice_server
    count = len(voice.utterances(fake.guild))
    conn = voice.connection(fake.guild)
    text = f"say {message}" if direct else message
    sent = time.monotonic()
    await fake.send(fake.bob, text)
    await voice.wait_until(lambda: conn.current_frames >= 1 or len(voice.utterances(fake.guild)) > count, 60,
                           "the first voice packet")
    cpu_start = cpu_seconds(pid) if pid else 0.0
    heard = (await voice.wait_for_utterances(fake.guild, count + 1, timeout=60))[count]
    cpu = cpu_seconds(pid) - cpu_start if pid else 0.0
    return heard.started - sent, heard, cpu


async def run(rounds: int, force_direct: bool, dave: bool) -> dict:
    """One full measurement with DAVE on or off; returns the figures."""
    async with fake_discord_with_voice(dave=dave) as fake:
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

            voice = fake.voice_server
            await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
            asked = time.monotonic()
            await fake.reply_to(await fake.send(fake.bob, "!join"))
            await voice.wait_connected(fake.guild, fake.voice)
            join = {"connected": time.monotonic() - asked}
            if dave:
                await voice.wait_dave_ready(fake.guild)
                join["DAVE ready"] = time.monotonic() - asked
            await bot.wait_for_log("tts warm-up done", timeout=60)
            joined_mb = rss_mb(bot.proc.pid)

            replies = REPLIES[:rounds]
            results: dict[str, list[float]] = {"uncached": [], "cached": []}
            gaps: list[float] = []
            errors: list[float] = []
            cpu = audio = 0.0
            for kind in ("uncached", "cached"):
                for message, reply in replies:
                    latency, heard, used = await speak(fake, reply if direct else message, direct, bot.proc.pid)
                    results[kind].append(latency)
                    gaps.append(heard.max_gap)
                    if kind == "uncached":
                        errors.append(wer(reply, await heard.transcribe()))
                    else:  # nothing left to synthesise: the CPU is playback's
                        cpu += used
                        audio += heard.seconds
            _latency, long_heard, _cpu = await speak(fake, LONG[1] if direct else LONG[0], direct)
            long_gap = long_heard.max_gap
            long_wer = wer(LONG[1], await long_heard.transcribe())
            tts_mb = rss_mb(bot.proc.pid)

            audio_msg = voice_message("what time does the shop open tomorrow")
            msg = await fake.send(fake.alice, "", attachments=[("voice-message.ogg", audio_msg, "audio/ogg")])
            await fake.reply_to(msg, lambda m: "said" in m.text, timeout=120)
            loaded_mb = rss_mb(bot.proc.pid)
            if dave:
                voice.assert_end_to_end_encrypted()
                conn = voice.connection(fake.guild)
                dave_facts = (f"epoch {conn.dave.epoch}, {conn.dave.decrypted_frames} frames decrypted by the "
                              f"listener, {voice.undecryptable_frames} undecryptable, "
                              f"{voice.unencrypted_frames} unencrypted after ready")
            else:
                dave_facts = "off (plaintext, protocol version 0)"
        finally:
            code = await bot.stop()
    return {"direct": direct, "results": results, "gaps": gaps, "long_gap": long_gap, "errors": errors,
            "long_wer": long_wer, "join": join, "cpu_per_audio_s": cpu / audio if audio else 0.0,
            "audio_s": audio, "dave": dave_facts, "code": code,
            "memory": [("started, no speech model", before_mb, TARGET_IDLE_MB),
                       ("trained (text model loaded)" if not direct else "(no training)", trained_mb, None),
                       ("after !join (TTS voice loaded)", joined_mb, None),
                       ("after speaking", tts_mb, None),
                       ("TTS + STT models loaded", loaded_mb, TARGET_LOADED_MB)]}


def report(name: str, r: dict, rounds: int) -> None:
    def row(label: str, values: list[float], target: float, unit: str = "s") -> None:
        scale = 1000 if unit == "ms" else 1
        worst = max(values)
        print(f"{label:<40} median {statistics.median(values) * scale:7.3f} {unit}  max {worst * scale:7.3f} {unit}"
              f"  (target <= {target * scale:g} {unit}) {'OK' if worst <= target else 'OVER'}")

    print(f"\n=== {name}: DAVE {r['dave']}")
    print(f"from the user's message to the first voice packet, {rounds} one-sentence replies:")
    row("uncached (piper)", r["results"]["uncached"], TARGET_UNCACHED)
    row("cached", r["results"]["cached"], TARGET_CACHED)
    row("largest gap inside an utterance", r["gaps"], TARGET_GAP, "ms")
    row(f"largest gap, {len(LONG[1].split('. '))}-sentence reply", [r["long_gap"]], TARGET_GAP, "ms")
    print(f"{'round-trip WER (piper -> opus -> whisper)':<40} mean {statistics.mean(r['errors']):.2f}, "
          f"4-sentence reply {r['long_wer']:.2f}")
    print("!join -> " + ", ".join(f"{k} {v:.2f} s" for k, v in r["join"].items()))
    print(f"bot CPU while speaking cached replies: {r['cpu_per_audio_s'] * 1000:.1f} ms per second of audio "
          f"({r['audio_s']:.1f} s of audio)")
    print("bot resident memory (current / peak MB):")
    for label, (now, peak), target in r["memory"]:
        verdict = f"(target <= {target} MB) {'OK' if peak <= target else 'OVER'}" if target else ""
        print(f"  {label:<38} {now:6.0f} / {peak:6.0f}  {verdict}")
    print(f"bot exit code {r['code']}")


def festival_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of the bot's festival process, or zeros when none runs."""
    for child in psutil.Process(pid).children(recursive=True):
        if child.name() == "festival":
            return rss_mb(child.pid)
    return 0.0, 0.0


async def russian(rounds: int) -> int:
    """Russian replies through the chat path, with DAVE: latency, round trip, memory."""
    from audio.festival import spell_out_russian

    def spoken(text: str) -> str:
        return spell_out_russian(text).lower().replace("ё", "е")

    async with fake_discord_with_voice(dave=True) as fake:
        bot = await start_bot(fake, direct=False)
        try:
            if not await train(fake, REPLIES_RU):
                print("the chat path can't answer with a trained model: nothing measured")
                return 1
            voice = fake.voice_server
            await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
            await fake.reply_to(await fake.send(fake.bob, "!join"))
            await voice.wait_connected(fake.guild, fake.voice)
            await voice.wait_dave_ready(fake.guild)
            await bot.wait_for_log("tts warm-up done", timeout=60)  # the server's language (none: English)
            replies = REPLIES_RU[:rounds]
            first = {"uncached": [], "cached": []}
            errors = words = 0
            misheard: list[str] = []
            for kind in ("uncached", "cached"):
                for message, reply in replies:
                    latency, heard, _cpu = await speak(fake, message, False)
                    first[kind].append(latency)
                    if kind == "uncached":
                        transcript = await heard.transcribe("base", "ru")
                        wrong, count = word_errors(spoken(reply), spoken(transcript))
                        errors, words = errors + wrong, words + count
                        if wrong:
                            misheard.append(f"{wrong}/{count} {reply} -> {transcript}")
            bot_mb, festival = rss_mb(bot.proc.pid), festival_mb(bot.proc.pid)
        finally:
            await bot.stop()
    cold, warm = first["uncached"][0], first["uncached"][1:]
    print(f"\n=== Russian replies (festival + festvox-ru), DAVE, {rounds} one-sentence replies")
    print(f"first voice packet, first reply (festival starts)  {cold:.3f} s")
    print(f"first voice packet, uncached, festival warm        median {statistics.median(warm):.3f} s  max "
          f"{max(warm):.3f} s  (target <= {TARGET_CACHED} s) {'OK' if max(warm) <= TARGET_CACHED else 'OVER'}")
    print(f"first voice packet, cached                         median {statistics.median(first['cached']):.3f} s  "
          f"max {max(first['cached']):.3f} s")
    print(f"round-trip WER (festival -> opus -> whisper base, ru)  {errors / words:.3f}  "
          f"(target <= {TARGET_RU_WER}) {'OK' if errors / words <= TARGET_RU_WER else 'OVER'}")
    for line in misheard:
        print(f"  {line}")
    print(f"resident memory (current / peak MB): bot {bot_mb[0]:.0f} / {bot_mb[1]:.0f}, "
          f"festival {festival[0]:.0f} / {festival[1]:.0f}")
    return 0


async def main(rounds: int, force_direct: bool, modes: list[str]) -> int:
    figures = {}
    for mode in modes:
        print(f"\n--- running with {'DAVE' if mode == 'dave' else 'plaintext'} voice")
        figures[mode] = await run(rounds, force_direct, dave=mode == "dave")
    for mode, r in figures.items():
        report("DAVE (E2EE)" if mode == "dave" else "plaintext", r, rounds)
    print("\nCPU per second of audio (50 frames), measured per frame in this process:")
    for label, seconds in per_frame_costs().items():
        print(f"  {label:<30} {seconds * 1e6:7.1f} us per frame = {seconds * 50 * 1000:6.2f} ms per second of audio")
    if {"dave", "plain"} <= set(figures):
        d, p = figures["dave"], figures["plain"]
        med = statistics.median
        print("\nDAVE vs plaintext (median; CPU per second of audio):")
        print(f"  first packet, uncached  {med(d['results']['uncached']):.3f} s vs {med(p['results']['uncached']):.3f} s")
        print(f"  first packet, cached    {med(d['results']['cached']):.3f} s vs {med(p['results']['cached']):.3f} s")
        print(f"  largest gap             {max(d['gaps']) * 1000:.0f} ms vs {max(p['gaps']) * 1000:.0f} ms")
        print(f"  bot CPU while speaking  {d['cpu_per_audio_s'] * 1000:.1f} ms vs {p['cpu_per_audio_s'] * 1000:.1f} ms "
              f"-> end-to-end encryption costs {(d['cpu_per_audio_s'] - p['cpu_per_audio_s']) * 1000:+.1f} ms "
              "of CPU per second of audio")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="one-sentence replies per measurement (max 8)")
    parser.add_argument("--direct", action="store_true", help="speak through speak_reply without the model")
    parser.add_argument("--modes", default="dave,plain", help="dave, plain or both (comma-separated)")
    parser.add_argument("--russian", action="store_true", help="Russian replies (festival) instead")
    args = parser.parse_args()
    if args.russian:
        sys.exit(asyncio.run(russian(min(args.rounds, len(REPLIES_RU)))))
    modes = [m.strip() for m in args.modes.split(",") if m.strip() in ("dave", "plain")]
    sys.exit(asyncio.run(main(min(args.rounds, len(REPLIES)), args.direct, modes)))
