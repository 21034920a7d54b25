"""Talking in voice (issue 14): how fast and how well the bot answers members who speak.

Starts the local Discord server with its DAVE voice server and the real bot, trains the
tiny model of the voice tests, turns listening on, and has members speak as Discord relays
them (localdiscord/speaker.py: op 5, DAVE + transport encrypted RTP in real time).

  * from a member's last voice packet to the text answer      (target <= 1.5 s warm)
    and to the first packet of the spoken answer              (target <= 2.0 s warm)
  * transcript WER of the shared recordings played into the channel
    (../shared/data/speech/transcripts.tsv beside the repository; skipped when absent)
  * the bot's CPU per second of received audio while a member talks (receive, DAVE and
    transport decryption, Opus decoding: transcription starts after the utterance)
  * `!hi` round trip p50/p99 while three members talk at once (and get transcribed)

    .venv/bin/python bench/voice_listen.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.transcripts import wer  # noqa: E402
from localdiscord import BotProcess  # noqa: E402
from localdiscord.speaker import FakeSpeaker, pcm_of_file, pcm_of_speech  # noqa: E402
from localdiscord.voice import fake_discord_with_voice  # noqa: E402
from tests.integration.test_voice_speech import train  # noqa: E402

SPEECH = ROOT.parent / "shared" / "data" / "speech"  # ../shared beside the repository
TARGET_TEXT = 1.5
TARGET_VOICE = 2.0
# Sentences tiny.en reads right from espeak-ng, with the model's topic for each.
SENTENCES = ["what is the weather like", "good morning how are you today", "when does the shop close",
             "i am hungry what is for dinner", "nice to meet you", "hello there"]


def said_by(fake, user, after: int):
    prefix = f"🎙️ {user.username} said:"
    return lambda m: m.channel.id == fake.general.id and m.text.startswith(prefix) and m.id > after


def transcript_of(text: str) -> str:
    return text.split(" said: ", 1)[1].split(" → ", 1)[0]


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def latency_round(fake, voice, bob: FakeSpeaker, sentence: str) -> tuple[float, float | None, str]:
    voice.clear(fake.guild)
    mark = max(fake.messages)
    spoken = await bob.say(await asyncio.to_thread(pcm_of_speech, sentence))
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=60)
    text_at = time.monotonic()
    voice_latency = None
    if not message.text.endswith("with `!train`, or you can `!correct` me."):  # a sure answer is spoken
        [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=60)
        voice_latency = heard.started - spoken.last_packet
    return text_at - spoken.last_packet, voice_latency, transcript_of(message.text)


async def main(rounds: int) -> int:
    async with fake_discord_with_voice(dave=True) as fake:
        voice = fake.voice_server
        data_dir = Path(tempfile.mkdtemp(prefix="bench-listen-"))
        env = {"VOICE_IDLE_SECONDS": "900", "TTS_ENGINES": "piper,espeak",
               "STT_ENGINES": "whisper", "PLAYBACK_QUEUE_SIZE": "20"}
        bot = BotProcess(fake, data_dir, env=env)
        await bot.start()
        try:
            await train(fake)
            await fake.reply_to(await fake.send(fake.alice, "!listen on"))
            await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
            await fake.reply_to(await fake.send(fake.bob, "!join"))
            await voice.wait_dave_ready(fake.guild)
            await voice.wait_for_utterances(fake.guild, 1, timeout=60)  # "I'm listening"
            bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=1)
            await voice.wait_until(bob.in_group, 10, "bob in the group")

            cold = await latency_round(fake, voice, bob, SENTENCES[0])
            print(f"cold (first transcription): text {cold[0]:.2f} s, voice "
                  f"{cold[1] if cold[1] is None else round(cold[1], 2)} s")
            texts, voices = [], []
            for index in range(rounds):
                sentence = SENTENCES[index % len(SENTENCES)]
                text_latency, voice_latency, heard = await latency_round(fake, voice, bob, sentence)
                texts.append(text_latency)
                if voice_latency is not None:
                    voices.append(voice_latency)
                print(f"  {sentence!r}: heard {heard!r} (WER {wer(sentence, heard):.2f}); text {text_latency:.2f} s, "
                      f"voice {'-' if voice_latency is None else f'{voice_latency:.2f} s'}")
            print(f"last packet -> text answer  p50 {statistics.median(texts):.2f} s  max {max(texts):.2f} s  "
                  f"(target <= {TARGET_TEXT} s)")
            if voices:
                print(f"last packet -> spoken answer p50 {statistics.median(voices):.2f} s  max {max(voices):.2f} s  "
                      f"(target <= {TARGET_VOICE} s)")

            # WER of the shared recordings, and the receive path's CPU while they play.
            table = SPEECH / "transcripts.tsv"
            cpu_used = audio_seconds = 0.0
            if table.exists():
                rows = [line.split("\t") for line in table.read_text().splitlines()[1:] if "\t" in line]
                for name, reference in rows:
                    if not (SPEECH / name).exists() or name.endswith((".mp3", ".ogg")):
                        continue  # the same recording in another container
                    pcm = await asyncio.to_thread(pcm_of_file, SPEECH / name)
                    voice.clear(fake.guild)
                    mark = max(fake.messages)
                    before = cpu_seconds(bot.proc.pid)
                    spoken = await bob.say(pcm)
                    cpu_used += cpu_seconds(bot.proc.pid) - before
                    audio_seconds += spoken.seconds
                    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=90)
                    heard = transcript_of(message.text)
                    print(f"  {name} ({spoken.seconds:.1f} s): WER {wer(reference, heard):.2f}  {heard!r}")
                    if not message.text.endswith("`!correct` me."):
                        await voice.wait_for_utterances(fake.guild, 1, timeout=90)  # let the answer be said
            else:
                print("shared recordings absent: WER skipped")
            if audio_seconds:
                print(f"bot CPU while members talk: {cpu_used / audio_seconds * 1000:.1f} ms per second of received "
                      f"audio (receive, decrypt, decode; {audio_seconds:.0f} s)")

            # !hi while three members talk at once.
            await fake.set_voice_state(fake.guild, fake.alice, fake.voice)
            await fake.set_voice_state(fake.guild, fake.owner, fake.voice)
            speakers = [bob, FakeSpeaker(voice, fake.guild, fake.alice, seed=2),
                        FakeSpeaker(voice, fake.guild, fake.owner, seed=3)]
            for speaker in speakers:
                await voice.wait_until(speaker.in_group, 10, f"{speaker.user.username} in the group")
            clip = SPEECH / "jfk.flac"
            pcm = (await asyncio.to_thread(pcm_of_file, clip) if clip.exists()
                   else await asyncio.to_thread(pcm_of_speech, " ".join(SENTENCES)))
            mark = max(fake.messages)
            talking = asyncio.gather(*(s.say(pcm) for s in speakers))
            hi: list[float] = []
            started = time.monotonic()
            answers: list = []
            while not talking.done() or len(answers) < 3:
                sent = time.monotonic()
                await fake.reply_to(await fake.send(fake.alice, "!hi"), timeout=30)
                hi.append(time.monotonic() - sent)
                answers = [m for m in fake.bot_messages(fake.general) if m.id > mark and m.text.startswith("🎙️")]
                if time.monotonic() - started > 120:
                    print("  (gave up waiting for the three answers after 120 s)")
                    break
                await asyncio.sleep(0.05)  # pacing: about 20 commands a second, as a busy server
            await talking
            for message in answers:
                print(f"  {message.text[:110]!r}")
            print(f"!hi while three members talk: p50 {pct(hi, 0.5) * 1000:.0f} ms  p99 {pct(hi, 0.99) * 1000:.0f} ms  "
                  f"({len(hi)} commands)")
            print("bot log:", *[line.split("voice.listen", 1)[-1] for line in bot.lines if "Answered" in line][-3:],
                  sep="\n  ")
        finally:
            await bot.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    sys.exit(asyncio.run(main(parser.parse_args().rounds)))
