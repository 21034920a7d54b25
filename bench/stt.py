"""Speech-to-text benchmark: accuracy (WER) and speed (real-time factor) per recording.

Runs the production path (ffmpeg decode, then the engine) over a folder with a
``transcripts.tsv`` (columns: file, reference) and prints a table. Targets for
the default engine: mean WER <= 0.08, real-time factor <= 0.25 including
decoding, model load <= 3 s.

    .venv/bin/python bench/stt.py                       # ../shared/data/speech
    .venv/bin/python bench/stt.py --data DIR --beam-size 1 --no-vad --check
    .venv/bin/python bench/stt.py --no-int8-copy        # the model quantized while loading, as before
"""

from __future__ import annotations

import argparse
import atexit
import csv
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audio.decode import decode_audio  # noqa: E402
from audio.stt import (  # noqa: E402
    WhisperEngine, int8_copy, build_engines, load_whisper_model, resolve_whisper_model, transcribe_with_fallback,
)
from tests.support.transcripts import normalize_text, word_errors  # noqa: E402

MAX_WER = 0.08
MAX_RTF = 0.25
MAX_LOAD = 3.0


def default_data_dir() -> Path:
    return ROOT.parent / "shared" / "data" / "speech"  # ../shared beside the repository


def read_transcripts(data: Path) -> list[tuple[str, str]]:
    with open(data / "transcripts.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r["file"], r["reference"]) for r in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="folder with transcripts.tsv")
    ap.add_argument("--engines", default="whisper", help="comma-separated fallback list (default: whisper)")
    ap.add_argument("--language", default="en")
    ap.add_argument("--model", default="tiny.en", help="whisper model name or path")
    ap.add_argument("--beam-size", type=int, default=None, help="override the tuned whisper beam size")
    ap.add_argument("--no-vad", action="store_true", help="disable whisper's VAD filter")
    ap.add_argument("--repeat", type=int, default=1, help="runs per file; the fastest counts for speed")
    ap.add_argument("--verbose", "-v", action="store_true", help="print reference and hypothesis")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="where the int8 copy of the model is kept, as the bot's DATA_DIR/speech-models "
                         "(default: a fresh temporary folder, so the one-off conversion is timed as 'convert')")
    ap.add_argument("--no-int8-copy", action="store_true",
                    help="load the model as it ships (quantized while loading), as before the int8 copy")
    args = ap.parse_args(argv)
    cache = None
    if not args.no_int8_copy:
        cache = args.cache_dir
        if cache is None:
            cache = Path(tempfile.mkdtemp(prefix="bench-stt-models-"))
            atexit.register(shutil.rmtree, cache, True)

    if not (args.data / "transcripts.tsv").is_file():
        print(f"no transcripts.tsv in {args.data}: the shared speech data lives in ../shared/data/speech "
              "beside the repository, or pass --data DIR", file=sys.stderr)
        return 2
    rows = read_transcripts(args.data)
    options = {}
    if args.beam_size is not None:
        options["beam_size"] = args.beam_size
    if args.no_vad:
        options["vad_filter"] = False
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    engines = [WhisperEngine(args.model, cache_dir=cache, **options) if n == "whisper" else n for n in names]
    engines = build_engines(engines, whisper_model=args.model)

    load = convert = None
    if "whisper" in names:
        if cache is not None:  # the one-off int8 copy (a child process), timed apart from loading
            started = time.perf_counter()
            int8_copy(resolve_whisper_model(args.model), cache)
            convert = time.perf_counter() - started
        started = time.perf_counter()
        load_whisper_model(args.model, cache_dir=cache)
        load = time.perf_counter() - started

    print(f"data: {args.data}   engines: {','.join(names)}   model: {args.model}   language: {args.language}   "
          f"int8 copy: {'no' if cache is None else cache}")
    if "whisper" in names:
        opts = next(e for e in engines if isinstance(e, WhisperEngine)).options
        print("whisper options: " + ", ".join(f"{k}={v}" for k, v in opts.items()))
    header = f"{'file':<18} {'audio s':>7} {'decode s':>8} {'stt s':>6} {'RTF':>5} {'WER':>5}  engine"
    print(header)
    print("-" * len(header))

    total_audio = total_time = 0.0
    wers, rtfs, total_edits, total_words, first = [], [], 0, 0, None
    for name, reference in rows:
        data = (args.data / name).read_bytes()
        best = None
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            audio = decode_audio(data)
            t1 = time.perf_counter()
            text, engine = transcribe_with_fallback(engines, audio, args.language)
            t2 = time.perf_counter()
            if best is None or t2 - t0 < best[0] + best[1]:
                best = (t1 - t0, t2 - t1, audio.seconds, text, engine)
        dec, stt, secs, text, engine = best
        if first is None:
            first = dec + stt
        edits, n = word_errors(reference, text)
        w = edits / max(n, 1)
        wers.append(w)
        total_edits += edits
        total_words += n
        total_audio += secs
        total_time += dec + stt
        rtfs.append((dec + stt) / secs)
        print(f"{name:<18} {secs:7.2f} {dec:8.3f} {stt:6.3f} {(dec + stt) / secs:5.3f} {w:5.3f}  {engine}")
        if args.verbose:
            print(f"    ref: {normalize_text(reference)}\n    hyp: {normalize_text(text)}\n    raw: {text}")

    mean_wer = sum(wers) / len(wers)
    rtf = total_time / total_audio
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("-" * len(header))
    print(f"files: {len(rows)}   audio: {total_audio:.1f} s   processing: {total_time:.2f} s")
    print(f"mean WER: {mean_wer:.4f}   (pooled WER: {total_edits / max(total_words, 1):.4f})   target <= {MAX_WER}")
    print(f"real-time factor (incl. decoding): {rtf:.3f}   target <= {MAX_RTF}   "
          f"(per file {min(rtfs):.3f}..{max(rtfs):.3f}; short clips pay Whisper's fixed 30 s window)")
    if load is not None:
        print(f"model load: {load:.2f} s (target <= {MAX_LOAD})   first transcription after load: {first:.2f} s"
              + (f"   one-off int8 copy: {convert:.2f} s" if convert is not None else ""))
    print(f"peak RSS: {peak_mb:.0f} MB   cpu cores: {os.cpu_count()}")

    failed = mean_wer > MAX_WER or rtf > MAX_RTF or (load is not None and load > MAX_LOAD)
    if args.check and failed:
        print("FAILED: a target was missed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
