"""TranscriptionService end to end: real ffmpeg, real faster-whisper, real offline Google."""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess

import pytest

from audio.errors import AudioDecodeError, AudioError, AudioTooLarge, AudioTooLong, NoSpeech, TranscriptionFailed
from audio.stt import load_whisper_model
from tests.support.transcripts import wer
from errors import UserError
from audio.transcription import Busy, Transcript, TranscriptionService
from tests.unit.test_stt_decode import encode, espeak, wav_seconds


SENTENCE = "Hello everyone, welcome to the server. Please read the rules first."


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("service")
    wav = espeak(SENTENCE, d / "hello.wav")
    return {
        "ogg": encode(wav, "ogg", d).read_bytes(),
        "mp4": encode(wav, "mp4", d).read_bytes(),
        "seconds": wav_seconds(wav),
        "dir": d,
    }


@pytest.fixture(scope="module", autouse=True)
def model_loaded_once():
    load_whisper_model("tiny.en")  # shared by every service in the process


def make(**kw) -> TranscriptionService:
    kw.setdefault("engines", ("whisper",))
    return TranscriptionService(**kw)


async def test_voice_message_is_transcribed(voice):
    svc = make(engines=("whisper", "google"))
    try:
        t = await svc.transcribe(voice["ogg"])
    finally:
        await svc.close()
    assert isinstance(t, Transcript)
    assert t.engine == "whisper"
    assert wer(SENTENCE, t.text) <= 0.3, t.text
    assert t.audio_seconds == pytest.approx(voice["seconds"], abs=0.1)
    assert t.elapsed > 0


async def test_offline_google_first_falls_back_to_whisper(voice, caplog):
    caplog.set_level(logging.WARNING, logger="audio.stt")
    async with TranscriptionService(engines=("google", "whisper"), google_timeout=5) as svc:
        t = await svc.transcribe(voice["mp4"])
    assert t.engine == "whisper" and wer(SENTENCE, t.text) <= 0.3
    assert any(
        r.name == "audio.stt" and "google failed" in r.getMessage() and "falling back to whisper" in r.getMessage()
        for r in caplog.records
    )


async def test_transcription_does_not_block_the_event_loop(voice):
    async with make() as svc:
        task = asyncio.ensure_future(svc.transcribe(voice["ogg"]))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0)  # only yields to the loop; counts how often it gets control
            ticks += 1
        await task
    assert ticks > 100


@pytest.mark.slow
async def test_busy_when_workers_and_queue_are_full(voice):
    async with make(workers=1, queue_size=1) as svc:
        results = await asyncio.gather(*(svc.transcribe(voice["ogg"]) for _ in range(3)), return_exceptions=True)
        busy = [r for r in results if isinstance(r, Busy)]
        done = [r for r in results if isinstance(r, Transcript)]
        assert len(busy) == 1 and len(done) == 2, results
        assert isinstance(busy[0], UserError) and "busy" in busy[0].user_message.lower()
        assert "try again" in busy[0].user_message.lower()
        assert svc.pending == 0
        # capacity comes back once the jobs are done
        assert (await svc.transcribe(voice["ogg"])).engine == "whisper"


@pytest.mark.slow
async def test_queue_size_bounds_waiting_jobs_per_scope_and_overall(voice):
    async with make(workers=1, queue_size=2) as svc:  # one waiting place per scope by default
        jobs = [asyncio.ensure_future(svc.transcribe(voice["ogg"], scope="A")) for _ in range(2)]
        await asyncio.sleep(0)  # a single yield (not a wait): the tasks start and take their places
        assert svc.pending == 2
        with pytest.raises(Busy) as over_share:
            await svc.transcribe(voice["ogg"], scope="A")
        assert over_share.value.retry_after >= 1
        assert f"try again in {math.ceil(over_share.value.retry_after)} s" in over_share.value.user_message
        jobs.append(asyncio.ensure_future(svc.transcribe(voice["ogg"], scope="B")))  # another server still fits
        await asyncio.sleep(0)
        assert svc.pending == 3
        with pytest.raises(Busy):  # the queue is full and every scope holds only its share
            await svc.transcribe(voice["ogg"], scope="C")
        results = await asyncio.gather(*jobs)
        assert all(r.engine == "whisper" for r in results)
        assert svc.pending == 0


@pytest.mark.slow
async def test_a_second_server_is_served_before_the_first_servers_backlog(voice):
    async with make(workers=1, queue_size=4, scope_queue_size=3) as svc:
        finished: list[str] = []

        async def job(scope: str, n: int) -> None:
            await svc.transcribe(voice["ogg"], scope=scope)
            finished.append(f"{scope}{n}")

        flood = [asyncio.ensure_future(job("A", n)) for n in range(4)]  # one runs, three wait
        await asyncio.sleep(0)
        late = asyncio.ensure_future(job("B", 0))
        await asyncio.gather(*flood, late)
    assert finished == ["A0", "B0", "A1", "A2", "A3"]


@pytest.mark.slow
async def test_a_long_recording_takes_turns_with_another_server(tmp_path):
    """Recognised in parts (slice_seconds), it lets server B's short message go between them."""
    long_text = " ".join([SENTENCE] * 6)  # ~25 s of speech: several 6 s parts
    long_ogg = encode(espeak(long_text, tmp_path / "long.wav"), "ogg", tmp_path).read_bytes()
    short_ogg = encode(espeak(SENTENCE, tmp_path / "short.wav"), "ogg", tmp_path).read_bytes()
    async with make(workers=1, slice_seconds=6) as svc:
        finished: list[str] = []
        results: dict[str, Transcript] = {}

        async def job(scope: str, data: bytes) -> None:
            results[scope] = await svc.transcribe(data, scope=scope)
            finished.append(scope)

        long_job = asyncio.ensure_future(job("A", long_ogg))
        await asyncio.sleep(0)  # a single yield: A's job holds the worker
        await job("B", short_ogg)
        await long_job
    assert finished == ["B", "A"]
    assert wer(long_text, results["A"].text) <= 0.3, results["A"].text
    assert results["A"].audio_seconds > 20 and wer(SENTENCE, results["B"].text) <= 0.3


async def test_silence_is_reported_as_no_speech(tmp_path):
    ogg = tmp_path / "silence.ogg"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
                    "-t", "4", "-c:a", "libopus", str(ogg)], check=True)
    async with make() as svc:
        with pytest.raises(NoSpeech) as e:
            await svc.transcribe(ogg.read_bytes())
    assert e.value.user_message == "I couldn't hear any speech in that recording."


async def test_noise_without_speech_is_no_speech(tmp_path):
    # loud enough to pass the silence check, so the engine itself must find no speech
    ogg = tmp_path / "noise.ogg"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anoisesrc=d=4:c=pink:a=0.05:seed=7",
                    "-ar", "48000", "-c:a", "libopus", str(ogg)], check=True)
    async with make() as svc:
        with pytest.raises(NoSpeech) as e:
            await svc.transcribe(ogg.read_bytes())
    assert "couldn't hear any speech" in e.value.user_message


async def test_bad_inputs_raise_audio_errors_not_crashes(voice):
    async with make(max_bytes=len(voice["ogg"]) - 1) as svc:
        with pytest.raises(AudioTooLarge):
            await svc.transcribe(voice["ogg"])
        assert svc.pending == 0
    async with make(max_seconds=2) as svc:
        with pytest.raises(AudioTooLong):
            await svc.transcribe(voice["ogg"])
        with pytest.raises(AudioDecodeError):
            await svc.transcribe(b"")
        with pytest.raises(AudioDecodeError):
            await svc.transcribe(b"definitely not audio\n" * 100)
        assert svc.pending == 0


async def test_unsupported_language_gives_a_clear_error(voice):
    async with make(engines=("whisper",), language="de") as svc:
        with pytest.raises(TranscriptionFailed) as e:
            await svc.transcribe(voice["ogg"])
    assert "de" in e.value.user_message


async def test_warm_up_and_close():
    svc = make()
    assert svc.warm_up() >= 0
    await svc.close()
    with pytest.raises(AudioError):
        await svc.transcribe(b"anything")


class Upload:
    """An upload fetched on demand: counts its downloads, and can hold them until released."""

    def __init__(self, data: bytes, held: bool = False, error: Exception | None = None):
        self.data = data
        self.error = error
        self.downloads = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    async def read(self) -> bytes:
        self.downloads += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.data


@pytest.mark.slow
async def test_an_upload_is_admitted_before_it_is_downloaded(voice):
    async with make(workers=1, queue_size=2) as svc:  # one running + one waiting for scope "A"
        admitted = [Upload(voice["ogg"], held=True) for _ in range(2)]
        jobs = [asyncio.ensure_future(svc.transcribe(fetch=u.read, scope="A")) for u in admitted]
        await asyncio.gather(*(u.started.wait() for u in admitted))  # both admitted: downloading
        refused = Upload(voice["ogg"])
        with pytest.raises(Busy):
            await svc.transcribe(fetch=refused.read, scope="A")
        assert refused.downloads == 0
        for upload in admitted:
            upload.release.set()
        results = await asyncio.gather(*jobs)
        assert all(wer(SENTENCE, r.text) <= 0.3 for r in results)
        assert [u.downloads for u in admitted] == [1, 1] and svc.pending == 0


async def test_a_too_big_or_failed_download_frees_its_place(voice):
    async with make(max_bytes=len(voice["ogg"]) - 1) as svc:
        declared = Upload(voice["ogg"])
        with pytest.raises(AudioTooLarge):  # refused by its declared size: never downloaded
            await svc.transcribe(fetch=declared.read, size=len(voice["ogg"]))
        lied = Upload(voice["ogg"])
        with pytest.raises(AudioTooLarge):  # bigger than it said: refused once downloaded
            await svc.transcribe(fetch=lied.read, size=10)
        assert (declared.downloads, lied.downloads, svc.pending) == (0, 1, 0)
    async with make() as svc:
        broken = Upload(voice["ogg"], error=ConnectionResetError("peer went away"))
        with pytest.raises(AudioError) as e:
            await svc.transcribe(fetch=broken.read, scope="A")
        assert "couldn't download" in e.value.user_message and svc.pending == 0
        with pytest.raises(AudioDecodeError):
            await svc.transcribe(fetch=Upload(b"").read)
        assert (await svc.transcribe(fetch=Upload(voice["ogg"]).read, scope="A")).engine == "whisper"


async def test_live_voice_uses_only_the_voice_engines_never_the_online_one(voice, caplog):
    """Uploads may go to Google (STT_ENGINES); what members say in a voice channel stays local
    (VOICE_STT_ENGINES): the same audio fails the online-only upload path here and is recognised
    by whisper when live, with no attempt at Google logged."""
    caplog.set_level(logging.WARNING, logger="audio.stt")
    async with TranscriptionService(engines=("google",), voice_engines=("whisper",), google_timeout=5) as svc:
        with pytest.raises(TranscriptionFailed):
            await svc.transcribe(voice["ogg"])  # the upload path tried Google (offline here) and failed
        caplog.clear()
        live = await svc.transcribe(voice["ogg"], live=True)
    assert live.engine == "whisper" and wer(SENTENCE, live.text) <= 0.3, live.text
    assert not [r for r in caplog.records if "google" in r.getMessage().lower()]


async def test_an_engine_named_for_uploads_and_voice_is_loaded_once():
    async with TranscriptionService(engines=("whisper", "google"), voice_engines=("whisper",)) as svc:
        assert svc.voice_engines[0] is svc.engines[0]
