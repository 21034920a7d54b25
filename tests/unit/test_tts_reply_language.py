"""The language a reply is spoken in (audio/reply_language.py), and the synthesiser speaking it:
Russian text by festival, English by piper or espeak, each cached under its own language."""

import io
import wave

import pytest

from tests.support.shared_data import in_ci  # under CI a missing install fails instead of skipping

from audio import festival
from audio.reply_language import reply_language
from audio.synthesis import SpeechSynthesizer
from audio.tts_cache import phrase_key
from storage.database import Database
from storage.languages import AUTO, LanguageSettings
from voice.playback import Playback


@pytest.mark.parametrize("text, setting, default, spoken", [
    ("Привет, как дела?", None, "en", "ru"),  # Cyrillic without a setting: Russian
    ("Привет, как дела?", "auto", "en", "ru"),
    ("Привет, как дела?", "en", "en", "ru"),  # the text wins over a setting in another script
    ("Привіт, як справи?", "uk", "en", "uk"),  # the setting names the Cyrillic language
    ("Модель обучена на датасете CEDR, точность 0.8", None, "en", "ru"),  # mostly Cyrillic
    ("Hello there, how are you?", None, "en", "en"),
    ("Hello there, how are you?", "ru", "en", "en"),  # an English answer on a Russian server
    ("Hallo, wie geht es dir heute?", "de", "en", "de"),
    ("The model is trained.", "de", "en", "en"),  # the bot's English words on a German server
    ("Bonjour tout le monde.", None, "fr", "fr"),  # TTS_LANGUAGE for Latin text without a setting
    ("Γειά σου κόσμε", "el", "en", "el"),
    ("你好", None, "en", "en"),  # another script and no setting: nothing better than the default
    ("12345 !!!", "ru", "en", "ru"),  # no letters: the setting, else the default
    ("12345 !!!", None, "en", "en"),
])
def test_reply_language(text, setting, default, spoken):
    assert reply_language(text, setting, default) == spoken


async def test_the_setting_a_reply_is_spoken_with_is_the_members_else_the_servers(tmp_path):
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    try:
        languages = LanguageSettings(db, default="en")  # the operator's STT_LANGUAGE: not a choice
        playback = Playback(None, None, None, on_idle=None, languages=languages)  # type: ignore[arg-type]
        assert await playback.language_setting(1, 7) is None
        await languages.set_server(1, "ru")
        assert await playback.language_setting(1, 7) == "ru" and await playback.language_setting(1) == "ru"
        await languages.set_member(7, "uk")
        assert await playback.language_setting(1, 7) == "uk" and await playback.language_setting(1) == "ru"
        await languages.set_member(7, AUTO)  # "detect": the text decides
        assert await playback.language_setting(1, 7) is None
        assert await Playback(None, None, None, on_idle=None).language_setting(1, 7) is None  # type: ignore[arg-type]
    finally:
        await db.close()


def test_a_long_russian_reply_ends_with_russian_words(tmp_path):
    synth = SpeechSynthesizer(engines=("espeak",), cache_dir=tmp_path / "c", max_chars=60)
    assert synth.clean("Это очень длинный ответ. " * 10).endswith("И так далее.")
    assert synth.clean("This is a very long answer. " * 10).endswith("And more.")


def test_cache_key_depends_on_language_and_voice():
    assert phrase_key("Да", "ru", "festival:msu_ru_nsh_clunits") != phrase_key("Да", "bg", "festival:msu_ru_nsh_clunits")
    assert phrase_key("Да", "ru", "festival:a") != phrase_key("Да", "ru", "gtts,espeak")


needs_festival = pytest.mark.skipif(not festival.voice_installed(festival.VOICES["ru"]) and not in_ci(),
                                    reason="festival + festvox-ru not installed")


@needs_festival
async def test_a_russian_reply_is_spoken_by_festival_and_cached_under_its_language(tmp_path):
    synth = SpeechSynthesizer(engines=("piper", "festival", "gtts", "espeak"), cache_dir=tmp_path / "c", gtts_timeout=2)
    try:
        clips = [clip async for clip in synth.speak_clips("Привет! Модель обучена за 12 секунд.")]
        assert [(c.engine, c.language, c.sample_rate) for c in clips] == [("festival", "ru", 16_000)] * 2
        assert clips[1].seconds > 2.0  # "двенадцать секунд" spoken, not skipped
        # The same words in another language are another cache entry (here: espeak's Ukrainian voice).
        assert synth.cached_clip("Привет!", "ru") is not None
        assert synth.cached_clip("Привет!", "uk") is None
        assert synth._voice_id("ru") == "festival:msu_ru_nsh_clunits,gtts,espeak"
        assert synth._voice_id("en").startswith("piper:") and "festival" not in synth._voice_id("en")
    finally:
        synth.close()


@needs_festival
async def test_without_festival_in_the_list_russian_falls_to_the_next_engine(tmp_path):
    synth = SpeechSynthesizer(engines=("piper", "espeak"), cache_dir=tmp_path / "c")
    clip = await synth.synthesize("Привет, как дела?")
    assert clip.engine == "espeak" and clip.language == "ru"


@needs_festival
async def test_warm_up_starts_festival_for_russian(tmp_path):
    synth = SpeechSynthesizer(engines=("piper", "festival", "espeak"), cache_dir=tmp_path / "c")
    try:
        assert synth.warm_up("ru").result(timeout=30) is None
        engine = next(e for e in synth._engines if e.name == "festival")
        assert engine._voices[festival.VOICES["ru"]].starts == 1
        assert list((tmp_path / "c").iterdir()) == []  # the warm-up phrase is not cached
        with wave.open(io.BytesIO(engine.synthesize("Да.", "ru"))) as reader:
            assert reader.getframerate() == 16_000
        assert engine._voices[festival.VOICES["ru"]].starts == 1
    finally:
        synth.close()
