"""Speech synthesis timings that used to be asserted in unit tests (wall clock belongs here).

  * phrase cache hit (PhraseCache.get), median of 50            target < 2 ms
  * SpeechSynthesizer.synthesize on a cached phrase, median of 20 target < 20 ms
  * speak_clips: time to the first clip vs the whole 3-sentence reply (piper)  target first < half
  * Russian (festival + festvox-ru): starting festival with its voice; then, warm, one sentence
    from text to the PCM Discord plays (ru-normalizr, festival, resampling to 48 kHz: what the first voice
    packet waits for), median of 8 bot sentences                          target < 0.3 s

Run: .venv/bin/python bench/tts_timing.py
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio.playback import pcm_for_discord  # noqa: E402
from audio.synthesis import SpeechSynthesizer  # noqa: E402
from audio.tts import pcm_to_wav  # noqa: E402
from audio.tts_cache import PhraseCache, phrase_key  # noqa: E402

REPLY = ("This is the first sentence. The second sentence is quite a bit longer than the first one was. "
         "And the third sentence also takes some time to say out loud.")


def verdict(ok: bool) -> str:
    return "OK" if ok else "OVER"


def cache_hits(directory: Path) -> float:
    cache = PhraseCache(directory, 10_000_000)
    keys = [phrase_key(f"phrase {i}", "en", "v") for i in range(50)]
    for key in keys:
        cache.put(key, pcm_to_wav(b"\x01\x00" * 2000, 22050), "espeak")
    timings = []
    for key in keys:
        started = time.perf_counter()
        cache.get(key)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


async def synthesizer(directory: Path) -> tuple[float, float, float]:
    synth = SpeechSynthesizer(engines=("piper",), cache_dir=directory / "c")
    synth.warm_up().result(timeout=60)
    await synth.synthesize("Your reminder is set for five o'clock.")
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        await synth.synthesize("Your reminder is set for five o'clock.")
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    clips = synth.speak_clips(REPLY)
    await clips.__anext__()
    first = time.perf_counter() - started
    _rest = [c async for c in clips]
    return statistics.median(timings), first, time.perf_counter() - started


RUSSIAN = ["Привет, рад тебя слышать.", "Завтра будет солнечно и тепло.", "Модель обучена, точность 93 процента.",
           "Обучение заняло 12 секунд.", "Я не уверен, что понял вопрос.", "Мы открываемся в девять утра.",
           "Я дружелюбный бот, который умеет говорить.", "Пожалуйста, обращайтесь в любое время."]


async def russian(directory: Path) -> tuple[float, list[float], float]:
    """(festival start with the voice and the normaliser, warm text -> PCM per sentence, real-time factor)."""
    synth = SpeechSynthesizer(engines=("festival",), cache_dir=directory / "ru")
    try:
        started = time.perf_counter()
        synth.warm_up("ru").result(timeout=60)
        cold = time.perf_counter() - started
        timings, audio = [], 0.0
        for sentence in RUSSIAN:
            started = time.perf_counter()
            clip = await synth.synthesize(sentence, "ru")
            await asyncio.to_thread(pcm_for_discord, clip.path)
            timings.append(time.perf_counter() - started)
            audio += clip.seconds
        return cold, timings, sum(timings) / audio
    finally:
        synth.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tts-") as folder:
        directory = Path(folder)
        hit = cache_hits(directory / "cache")
        cached, first, total = asyncio.run(synthesizer(directory))
        cold, warm, rtf = asyncio.run(russian(directory))
    print(f"phrase cache hit, median of 50          {hit * 1000:7.3f} ms  (target < 2 ms) {verdict(hit < 0.002)}")
    print(f"synthesize(cached phrase), median of 20 {cached * 1000:7.3f} ms  (target < 20 ms) {verdict(cached < 0.02)}")
    print(f"speak_clips first clip / whole reply    {first:7.3f} s / {total:.3f} s  (target first < half) "
          f"{verdict(first < total / 2)}")
    print(f"festival start (voice, normaliser)      {cold:7.3f} s")
    print(f"Russian sentence -> PCM, warm, median   {statistics.median(warm):7.3f} s  max {max(warm):.3f} s  "
          f"(target < 0.3 s) {verdict(max(warm) < 0.3)}; real-time factor {rtf:.3f}")


if __name__ == "__main__":
    main()
