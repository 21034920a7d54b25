"""The playground as a person feels it, measured in its real page (Debian Chromium, headless).

Starts `python bot.py` with no token (the playground) on a fresh DATA_DIR and opens its page:
1. `!hi`: from the Enter key in the message box (a capture-phase listener takes the time) to the
   bot's reply rendered in the message list (the page's own render log), N times;
2. voice: you join the voice channel, a tiny model is trained, then a chat message is sent and
   timed from Enter to the first sample of the bot's spoken answer reaching the page's WebAudio
   (decoded PCM streamed from the local voice server); the first is cold (speech synthesis), the
   rest reuse the loaded model and TTS voice (a different phrase each time, some repeated);
3. memory (resident set size, RSS), which must stay flat however long the playground runs (its
   local server keeps no test records: FakeDiscord/FakeVoiceServer(record=False)):
   - the playground process (`python bot.py`) after 1,000 messages sent from a signed-in client
     (each `!hi`, answered; every tenth with a small file), against the RSS after a warm-up;
   - 30 minutes of the bot's voice, simulated fast: 90,000 encrypted 20 ms RTP frames (10 s
     utterances) through the local voice server's real receive path (decrypt, Opus decode, PCM
     to the page of a person in voice, over its WebSocket), in this process; for comparison,
     3 minutes with record=True (what tests use: every utterance's PCM kept).
Run: .venv/bin/python bench/playground.py [N] [--memory]   (--memory: only part 3)
"""
from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from tests.browser.playground_process import PlaygroundProcess  # noqa: E402

VOICE_RUNS = 8
QUESTIONS = ["is it going to rain today", "where can i get pizza", "hello there", "what is the weather like"]
TOPICS = {"weather": ["is it going to rain today", "what is the weather like", "will it be sunny tomorrow"],
          "food": ["where can i get pizza", "what should i cook tonight", "i am hungry"],
          "greeting": ["hello there", "good morning", "hey how are you"]}

TIMING_HOOK = """
window.playground.enterAt = [];
document.getElementById('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) window.playground.enterAt.push(performance.now());
}, true);
"""

RENDERED_AFTER = """([after, text]) => {
  const hit = window.playground.log.find(e => e.kind === 'render' && e.id && BigInt(e.id) > BigInt(after)
      && document.querySelector(`.msg.bot[data-id="${e.id}"]`)?.innerText.includes(text));
  return hit ? hit.t : null;
}"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def dataset() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    for _ in range(4):
        for label, examples in TOPICS.items():
            writer.writerows((e, label) for e in examples)
    return out.getvalue().encode()


async def last_id(page) -> str:
    return await page.evaluate("[...document.querySelectorAll('#messages .msg')].pop()?.dataset.id || '0'")


async def hi_latencies(page, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        after = await last_id(page)
        await page.fill("#input", "!hi")
        await page.press("#input", "Enter")
        rendered = await (await page.wait_for_function(RENDERED_AFTER, arg=[after, "Hi you"])).json_value()
        entered = await page.evaluate("window.playground.enterAt.at(-1)")
        latencies.append(rendered - entered)
    return latencies


async def voice_latencies(page, folder: Path) -> list[float]:
    csv_path = folder / "topics.csv"
    csv_path.write_bytes(dataset())
    await page.set_input_files("#file", csv_path)
    await page.fill("#input", "!train")
    await page.press("#input", "Enter")
    await page.locator(".msg.bot", has_text="Training finished").wait_for(timeout=120_000)
    await page.click("#voice-button")
    await page.wait_for_selector("#voice-members li:has-text('you')")
    latencies = []
    for run in range(VOICE_RUNS):
        await page.evaluate("window.playground.firstSampleAt = null")
        after = await last_id(page)
        await page.fill("#input", QUESTIONS[run % len(QUESTIONS)])
        await page.press("#input", "Enter")
        replied = await (await page.wait_for_function(RENDERED_AFTER, arg=[after, ""], timeout=60_000)).json_value()
        first = await (await page.wait_for_function("() => window.playground.firstSampleAt",
                                                    timeout=60_000)).json_value()
        entered = await page.evaluate("window.playground.enterAt.at(-1)")
        latencies.append((replied - entered, first - entered))
        # Let this answer finish playing before the next question (the bot queues its replies).
        await page.wait_for_selector("#speaking", state="hidden", timeout=60_000)
    return latencies


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process, in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def rss_after_messages(folder: Path, count: int = 1000, warm_up: int = 100) -> tuple[float, float, int]:
    """RSS of the playground process after `warm_up`, then after `count` more messages (each
    `!hi` answered by the bot before the next); and the history folder's size."""
    import aiohttp

    from playground.world import YOU_ID, TEXT_CHANNELS

    process = PlaygroundProcess(folder / "data", {})
    await process.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         headers={"X-Playground": "1"}) as session:
            async with session.get(process.url) as response:  # the printed link: signed in
                assert response.status == 200, response.status
            async with session.ws_connect(f"{process.base_url}ws?user={YOU_ID}", max_msg_size=0) as ws:
                answers = 0

                async def answered(before: int) -> None:
                    nonlocal answers
                    while answers <= before:
                        data = json.loads((await ws.receive(timeout=30)).data)
                        if (data["type"] == "message" and data["message"]["author"]["bot"]
                                and "Hi you" in data["message"]["content"]):
                            answers += 1

                async def send(i: int) -> None:
                    form = aiohttp.FormData({"user": str(YOU_ID), "channel": str(TEXT_CHANNELS[0][1]),
                                             "content": "!hi"})
                    if i % 10 == 0:
                        form.add_field("file", os.urandom(4096), filename=f"note-{i}.bin")
                    before = answers
                    async with session.post(f"{process.base_url}api/send", data=form) as response:
                        assert response.status == 200, await response.text()
                    await answered(before)

                for i in range(warm_up):
                    await send(i)
                before = rss_mb(process.proc.pid)
                for i in range(count):
                    await send(i)
                after = rss_mb(process.proc.pid)
    finally:
        await process.stop()
    history = sum(p.stat().st_size for p in (folder / "data" / "playground").rglob("*") if p.is_file())
    return before, after, history


def rtp_packet(key: bytes, sequence: int, payload: bytes) -> bytes:
    """A voice packet as discord.py sends it (aead_xchacha20_poly1305_rtpsize, no extension)."""
    import nacl.bindings

    header = struct.pack(">BBHII", 0x80, 0x78, sequence & 0xFFFF, (sequence * 960) & 0xFFFFFFFF, 1234)
    nonce = struct.pack(">I", sequence & 0xFFFFFFFF)
    return header + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, header, nonce + bytes(20),
                                                                             key) + nonce


async def rss_after_voice(folder: Path, minutes: float, record: bool) -> tuple[float, float, int]:
    """RSS of this process before and after `minutes` of the bot's voice through the local voice
    server (record=False as in the playground) to a signed-in page in the voice channel; and how
    many PCM frames that page received."""
    import aiohttp
    from localdiscord.server import FakeDiscord
    from localdiscord.voice import OPUS_SILENCE, FakeVoiceServer, VoiceConnection
    from localdiscord.voice_connection import load_opus
    from playground.history import History
    from playground.web import PlaygroundPage
    from playground.world import YOU_ID, build_world

    load_opus()
    fake = FakeDiscord(world=build_world, record=record)
    await fake.start()
    voice = FakeVoiceServer(fake, record=record)
    page = PlaygroundPage(fake, voice, History(folder / f"history-{record}"))
    await page.start("127.0.0.1", 0)
    heard = 0
    try:
        async with aiohttp.ClientSession(cookies={page.cookie_name: page.token},
                                         headers={"X-Playground": "1"}) as session, \
                session.ws_connect(f"{page.url}ws?user={YOU_ID}") as ws:
            async with session.post(f"{page.url}api/voice", json={"user": str(YOU_ID), "join": True}) as response:
                assert response.status == 200

            async def listen() -> None:  # the page: plays every frame it gets
                nonlocal heard
                async for frame in ws:
                    if frame.type == aiohttp.WSMsgType.BINARY:
                        heard += 1

            listener = asyncio.create_task(listen())
            conn = VoiceConnection(voice, ws=None)  # type: ignore[arg-type]
            conn.secret_key, conn.guild_id, conn.channel_id = os.urandom(32), fake.guild.id, fake.voice.id
            encoder = discord.opus.Encoder()
            tone = b"".join(struct.pack("<hh", v, v) for v in
                            (int(8000 * ((i % 96) / 48 - 1)) for i in range(960)))  # a 500 Hz sawtooth
            opus = encoder.encode(tone, 960)
            frames, utterance, start = int(minutes * 60 * 50), 500, 0.0
            sequence = 0
            for i in range(frames):
                if i == 3000:  # after a minute: warmed up (decoder, queues, allocator)
                    gc.collect()
                    start = rss_mb()
                conn.receive_rtp(rtp_packet(conn.secret_key, sequence, opus), time.monotonic())
                sequence += 1
                if i % utterance == utterance - 1:  # 10 s utterances, each ended by silence frames
                    for _ in range(5):
                        conn.receive_rtp(rtp_packet(conn.secret_key, sequence, OPUS_SILENCE), time.monotonic())
                        sequence += 1
                if i % 25 == 0:
                    await asyncio.sleep(0)  # the page's pump and this listener run
            gc.collect()
            end = rss_mb()
            listener.cancel()
    finally:
        await page.stop()
        await fake.stop()
    return start, end, heard


async def memory(folder: Path) -> None:
    before, after, history = await rss_after_messages(folder)
    print(f"RSS, playground process, 1,000 messages (!hi answered, 100 with a 4 KB file) after 100 to warm up: "
          f"{before:6.1f} MB -> {after:6.1f} MB ({after - before:+.1f} MB); history on disk {history / 2**20:.1f} MB")
    start, end, heard = await rss_after_voice(folder, 30, record=False)
    print(f"RSS, 30 min of the bot's voice (90,000 frames, fast) to a page in voice, record=False (the playground): "
          f"{start:6.1f} MB after 1 min -> {end:6.1f} MB ({end - start:+.1f} MB); frames the page got {heard}")
    start, end, _heard = await rss_after_voice(folder, 3, record=True)
    print(f"   for comparison, 3 min with record=True (tests: every utterance's PCM kept): "
          f"{start:6.1f} MB after 1 min -> {end:6.1f} MB ({end - start:+.1f} MB for 2 min)")


async def main(n: int, only_memory: bool = False) -> None:
    from playwright.async_api import async_playwright

    if only_memory:
        with tempfile.TemporaryDirectory(prefix="bench-playground-") as tmp:
            await memory(Path(tmp))
        return

    with tempfile.TemporaryDirectory(prefix="bench-playground-") as tmp:
        folder = Path(tmp)
        process = PlaygroundProcess(folder / "data", {"STT_ENGINES": "whisper"})
        await process.start()
        try:
            async with async_playwright() as pw:
                context = await pw.chromium.launch_persistent_context(
                    str(folder / "profile"), executable_path=CHROMIUM,
                    args=CHROMIUM_FLAGS, viewport={"width": 1200, "height": 800})
                page = await context.new_page()
                await page.goto(process.url)
                await page.wait_for_function("() => window.playground.connected")
                await page.evaluate(TIMING_HOOK)
                await hi_latencies(page, 5)  # warm-up
                hi = await hi_latencies(page, n)
                voice = await voice_latencies(page, folder)
                await context.close()
        finally:
            await process.stop()
    print(f"!hi, Enter to reply rendered, n={n:<4}  p50 {percentile(hi, 50):6.1f} ms   "
          f"p99 {percentile(hi, 99):6.1f} ms   mean {statistics.mean(hi):6.1f} ms")
    (cold_text, cold_sound), warm = voice[0], [sound for _text, sound in voice[1:]]
    warm_text = [text for text, _sound in voice[1:]]
    print(f"voice, Enter to first sample played, warm n={len(warm)}: p50 {percentile(warm, 50):6.0f} ms   "
          f"max {max(warm):6.0f} ms   (text answer rendered: p50 {percentile(warm_text, 50):6.0f} ms)")
    print(f"voice, first answer after training (cold: model load, voice join with DAVE, TTS voice load): "
          f"text rendered {cold_text:6.0f} ms, first sample {cold_sound:6.0f} ms")
    with tempfile.TemporaryDirectory(prefix="bench-playground-") as tmp:
        await memory(Path(tmp))


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    asyncio.run(main(int(numbers[0]) if numbers else 200, only_memory="--memory" in sys.argv[1:]))
