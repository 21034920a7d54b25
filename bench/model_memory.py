"""Benchmark: many servers, each with its own model, chatted to in turn (issue 9).

Usage:  python bench/model_memory.py [--scopes 50] [--rows 3000] [--classes 20]
                                     [--cache-mb 40] [--rounds 3]
        python bench/model_memory.py --speech-peak   (peak RSS: speech models + encoder + a model)
        python bench/model_memory.py --speech-peak --languages en|ru|en,ru   (one of those, in this process)

--speech-peak measures three bots, each in its own process: one whose servers
trained in English (the English encoder), one in Russian (the multilingual
encoder, issue 21), and one with both kinds of server (both encoders loaded).

Trains one model per scope in a separate process (so training's memory does
not count here), then predicts through ``ModelService.predict`` for scope
1, 2, ..., N, ``--rounds`` times. The model cache (``MODEL_CACHE_BYTES``) is
set below what all models need, so most predictions hit an evicted model
and reload it from disk. Prints the bot-side base memory, the peak resident
memory, whether it stayed under base + cache bound (+ one model being
loaded), and p50/p99 latency for cold (evicted) and warm predictions.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _train_scopes(models_dir: str, first: int, count: int, rows: int, classes: int) -> None:
    """Child process: one model per scope, written like the training worker does."""
    from threadpoolctl import threadpool_limits

    from model.modelstore import write_model
    from tests.support.synthetic import intent_dataset
    from model.training import train_model
    from model.types import Example

    with threadpool_limits(limits=1, user_api="blas"):
        for scope in range(first, first + count):
            texts, labels = intent_dataset(rows, classes, seed=1000 + scope, confusion=0.1)
            result = train_model([Example(t, lab) for t, lab in zip(texts, labels)])
            write_model(Path(models_dir), str(scope), result.model, {"job_id": f"b{scope}"})


def build_models(models_dir: Path, scopes: int, rows: int, classes: int) -> float:
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    half = scopes // 2
    procs = [ctx.Process(target=_train_scopes, args=(str(models_dir), a, n, rows, classes))
             for a, n in ((1, half), (1 + half, scopes - half))]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("training a scope's model failed")
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


async def chat_in_turn(data_dir: Path, scopes: int, rounds: int, cache_bytes: int) -> dict:
    import psutil

    from model.modelstore import latest_version, load_model
    from model.predictor import estimate_bytes
    from model.service import ModelService
    from tests.support.synthetic import intent_dataset

    proc = psutil.Process()
    # Base: the bot-side libraries imported and one model used once, then dropped.
    load_model(latest_version(data_dir / "models", "1"))
    one_size = estimate_bytes(load_model(latest_version(data_dir / "models", "1"))[0])
    svc = ModelService(data_dir, model_cache_bytes=cache_bytes, prestart_worker=False)
    texts = {s: intent_dataset(40, 5, seed=1000 + s)[0] for s in range(1, scopes + 1)}
    await svc.predict("1", "warm up the thread pool")
    svc.cache.forget("1")
    base = proc.memory_info().rss
    peak = base
    cold, warm = [], []
    try:
        for r in range(rounds):
            for s in range(1, scopes + 1):
                scope = str(s)
                was_cached = scope in svc.cache.cached_scopes()
                start = time.perf_counter()
                await svc.predict(scope, texts[s][r % len(texts[s])])
                (warm if was_cached else cold).append((time.perf_counter() - start) * 1000)
                peak = max(peak, proc.memory_info().rss)
                # a second message to the same server right after: always warm
                start = time.perf_counter()
                await svc.predict(scope, texts[s][(r + 7) % len(texts[s])])
                warm.append((time.perf_counter() - start) * 1000)
        resident_estimate = svc.cache.resident_bytes
        loads, evictions = svc.cache.loads, svc.cache.evictions
    finally:
        await svc.close()
    return {
        "base": base, "peak": peak, "one_model": one_size, "resident_estimate": resident_estimate,
        "loads": loads, "evictions": evictions, "cold": cold, "warm": warm,
    }


def _rss_peak() -> tuple[int, int]:
    """(resident, peak resident) bytes of this process."""
    import psutil

    now = peak = psutil.Process().memory_info().rss
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return now, peak


def _train_small_hybrid(models_dir: str, scopes: dict[str, list[tuple[str, str]]]) -> None:
    from model.modelstore import write_model
    from model.training import TrainOptions, train_model
    from model.types import Example

    for scope, rows in scopes.items():
        result = train_model([Example(t, lab) for t, lab in rows], options=TrainOptions(encoder=True))
        write_model(Path(models_dir), scope, result.model, {"job_id": f"m{scope}", "encoder": result.encoder_name})


ENGLISH_ROWS = [
    ("will it rain tomorrow", "weather"), ("is it going to be sunny", "weather"), ("play some jazz", "music"),
    ("put on my playlist", "music"), ("order a pizza", "food"), ("book a table for dinner", "food"),
    ("what's the forecast", "weather"), ("skip this song", "music"), ("get me some sushi", "food"),
    ("how cold is it", "weather"), ("turn the music up", "music"), ("i'm hungry", "food"),
]
RUSSIAN_ROWS = [
    ("пойдёт ли завтра дождь", "погода"), ("будет ли солнечно", "погода"), ("включи джаз", "музыка"),
    ("поставь мой плейлист", "музыка"), ("закажи пиццу", "еда"), ("забронируй столик на ужин", "еда"),
    ("какой прогноз погоды", "погода"), ("пропусти эту песню", "музыка"), ("хочу суши", "еда"),
    ("как холодно на улице", "погода"), ("сделай музыку громче", "музыка"), ("я голоден", "еда"),
]


def speech_peaks() -> int:
    """Each bot in its own process (peak RSS is per process): English, Russian, both."""
    import subprocess

    ok = True
    for languages in ("en", "ru", "en,ru"):
        print(f"--- servers trained in {languages}:", flush=True)
        done = subprocess.run([sys.executable, __file__, "--speech-peak", "--languages", languages], cwd=str(REPO))
        ok &= done.returncode == 0
    return 0 if ok else 1


def speech_and_encoder_peak(languages: list[str]) -> int:
    """Peak RSS of the bot's model and speech parts together (issue 13: <= 500 MB).

    Loads what a busy bot holds at once: the whisper STT model (one real
    transcription), the piper TTS voice (one synthesis), the sentence encoder
    of each language's model and a trained TF-IDF+embedding model per
    language (one chat prediction each).
    """
    import psutil

    from audio.playback import keep_large_buffers_out_of_heap
    from audio.transcription import TranscriptionService
    from audio.tts import PiperEngine
    from model.service import ModelService

    scopes = {"en": ENGLISH_ROWS, "ru": RUSSIAN_ROWS}
    asks = {"en": "is it going to rain later", "ru": "будет ли дождь вечером"}
    with tempfile.TemporaryDirectory() as tmp:
        # Trained in a child process, as the bot's training worker does: not counted here.
        child = multiprocessing.get_context("spawn").Process(
            target=_train_small_hybrid, args=(str(Path(tmp) / "models"), {k: scopes[k] for k in languages}))
        child.start()
        child.join()
        keep_large_buffers_out_of_heap()  # as bot.py does at start-up
        svc = ModelService(Path(tmp), prestart_worker=False, use_encoder=True)
        stt = TranscriptionService(engines=("whisper",), model_cache_dir=Path(tmp) / "speech-models")
        audio = REPO.parent / "shared" / "data" / "speech" / "jfk_voice.ogg"
        steps = []
        heard = stt.transcribe_sync(audio.read_bytes()).text if audio.is_file() else "(no shared speech sample)"
        steps.append(("whisper transcription", _rss_peak()))
        PiperEngine().synthesize("The forecast says it will rain tomorrow.", "en")
        steps.append(("piper synthesis", _rss_peak()))
        answers = []
        for lang in languages:
            answers.append(asyncio.run(svc.predict(lang, asks[lang])))
            model = svc.cache.get(lang).model
            steps.append((f"{lang} prediction ({getattr(model, 'encoder_name', 'tfidf')})", _rss_peak()))
        for name, (now, top) in steps:
            print(f"  after {name:<36} resident {now / 2**20:4.0f} MB, peak so far {top / 2**20:4.0f} MB")
        kind = ", ".join(f"{a.label!r} ({type(svc.cache.get(lang).model).__name__})"
                         for lang, a in zip(languages, answers))
        peak = current = psutil.Process().memory_info().rss
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    print(f"speech + encoder + model: heard {heard[:40]!r}..., answered {kind}")
    ok = peak <= 500 * 2**20
    print(f"resident now {current / 2**20:.0f} MB, peak {peak / 2**20:.0f} MB (target <= 500 MB): "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def main() -> int:
    if "--speech-peak" in sys.argv:
        if "--languages" in sys.argv:
            return speech_and_encoder_peak(sys.argv[sys.argv.index("--languages") + 1].split(","))
        return speech_peaks()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scopes", type=int, default=50)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--cache-mb", type=float, default=40.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models-from", type=Path, help="reuse the data dir of an earlier run (kept)")
    args = parser.parse_args()
    cache_bytes = int(args.cache_mb * 1024 * 1024)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.models_from or Path(tmp)
        if (data_dir / "models").is_dir():
            secs = 0.0
        else:
            secs = build_models(data_dir / "models", args.scopes, args.rows, args.classes)
        on_disk = sum(p.stat().st_size for p in (data_dir / "models").rglob("*.model"))
        print(f"{args.scopes} scopes, one model each ({args.rows} rows / {args.classes} classes), "
              f"trained in {secs:.0f} s; {on_disk / 2**20:.1f} MB on disk")
        r = asyncio.run(chat_in_turn(data_dir, args.scopes, args.rounds, cache_bytes))

    mb = 2**20
    grown = r["peak"] - r["base"]
    limit = cache_bytes + r["one_model"]  # the bound, plus the model being loaded before an eviction
    ok = grown <= limit
    print(f"cache bound {cache_bytes / mb:.1f} MB; one model ~{r['one_model'] / mb:.1f} MB in memory (estimated)")
    print(f"base RSS {r['base'] / mb:.1f} MB, peak RSS {r['peak'] / mb:.1f} MB, growth {grown / mb:.1f} MB "
          f"(limit bound + one model = {limit / mb:.1f} MB): {'PASS' if ok else 'FAIL'}")
    print(f"cache holds ~{r['resident_estimate'] / mb:.1f} MB at the end; {r['loads']} loads, "
          f"{r['evictions']} evictions")
    print(f"cold (evicted) prediction: n={len(r['cold'])} p50 {percentile(r['cold'], 50):.1f} ms, "
          f"p99 {percentile(r['cold'], 99):.1f} ms")
    print(f"warm prediction:           n={len(r['warm'])} p50 {percentile(r['warm'], 50):.2f} ms, "
          f"p99 {percentile(r['warm'], 99):.2f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
