"""The playground as a person feels it, measured in its real page (Debian Chromium, headless).

Starts `python bot.py` with no token (the playground) on a fresh DATA_DIR and opens its page:
1. `!hi`: from the Enter key in the message box (a capture-phase listener takes the time) to the
   bot's reply rendered in the message list (the page's own render log), N times;
2. voice: you join the voice channel, a tiny model is trained, then a chat message is sent and
   timed from Enter to the first sample of the bot's spoken answer reaching the page's WebAudio
   (decoded PCM streamed from the local voice server); the first is cold (speech synthesis), the
   rest reuse the loaded model and TTS voice (a different phrase each time, some repeated).
Run: .venv/bin/python bench/playground.py [N]
"""
from __future__ import annotations

import asyncio
import csv
import io
import statistics
import sys
import tempfile
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
        first = await (await page.wait_for_function("window.playground.firstSampleAt", timeout=60_000)).json_value()
        entered = await page.evaluate("window.playground.enterAt.at(-1)")
        latencies.append((replied - entered, first - entered))
        # Let this answer finish playing before the next question (the bot queues its replies).
        await page.wait_for_selector("#speaking", state="hidden", timeout=60_000)
    return latencies


async def main(n: int) -> None:
    from playwright.async_api import async_playwright

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
                await page.wait_for_function("window.playground.connected")
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


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
