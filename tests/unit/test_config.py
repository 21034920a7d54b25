"""Settings: the token (or the playground without one), defaults, parsing and validation."""
from __future__ import annotations

import pytest

from config import ConfigError, load_settings


def load(tmp_path, **env):
    return load_settings({"DISCORD_TOKEN": "t", **env}, env_file=tmp_path / "none.env")


def test_token_is_required_with_the_playground_off_and_never_shown(tmp_path):
    with pytest.raises(ConfigError, match="Developer Portal|developers/applications"):
        load_settings({"PLAYGROUND": "off"}, env_file=tmp_path / "none.env")
    with pytest.raises(ConfigError, match="DISCORD_TOKEN is not set"):
        load_settings({}, env_file=tmp_path / "none.env", playground="off")  # --discord
    assert "sekrit" not in repr(load(tmp_path, DISCORD_TOKEN="sekrit"))


def test_without_a_token_the_playground_runs(tmp_path):
    s = load_settings({}, env_file=tmp_path / "none.env")
    assert s.discord_token == "" and s.playground == "auto" and s.use_playground
    assert s.playground_host == "127.0.0.1" and s.playground_port == 8800


def test_playground_mode_is_forced_by_setting_or_flag(tmp_path):
    assert not load(tmp_path).use_playground  # a token: Discord
    assert load(tmp_path, PLAYGROUND="on").use_playground
    assert load_settings({"DISCORD_TOKEN": "t"}, env_file=tmp_path / "none.env", playground="on").use_playground
    s = load(tmp_path, PLAYGROUND_HOST="0.0.0.0", PLAYGROUND_PORT="9000")
    assert s.playground_host == "0.0.0.0" and s.playground_port == 9000
    with pytest.raises(ConfigError, match="PLAYGROUND must be"):
        load(tmp_path, PLAYGROUND="maybe")
    with pytest.raises(ConfigError, match="PLAYGROUND_PORT"):
        load(tmp_path, PLAYGROUND_PORT="70000")


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert s.command_prefix == "!" and s.owner_ids == frozenset()
    assert s.stt_engines == ("whisper", "google") and s.chat_mode == "everywhere"


def test_parsing(tmp_path):
    s = load(tmp_path, OWNER_IDS=" 1, 22 ,333", DATA_DIR=str(tmp_path / "d"), MAX_AUDIO_SECONDS="30",
             TTS_ENGINES="espeak, Piper", SPEAK_REPLIES="no", CHAT_CHANNELS="5,6")
    assert s.owner_ids == {1, 22, 333} and s.data_dir == tmp_path / "d"
    assert s.max_audio_seconds == 30.0 and s.tts_engines == ("espeak", "piper")
    assert s.speak_replies is False and s.chat_channels == {5, 6}
    assert s.files_dir == tmp_path / "d" / "files"


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-file\nCOMMAND_PREFIX=?\n")
    s = load_settings({"COMMAND_PREFIX": "$"}, env_file=env_file)
    assert s.discord_token == "from-file" and s.command_prefix == "$"


@pytest.mark.parametrize("name, value", [
    ("OWNER_IDS", "12,abc"), ("MAX_AUDIO_SECONDS", "ten"), ("COOLDOWN_SECONDS", "-1"),
    ("CHAT_MODE", "sometimes"), ("STT_ENGINES", "whisper,siri"), ("COMMAND_PREFIX", "a b"),
    ("SPEAK_REPLIES", "maybe"), ("CONFIDENCE_THRESHOLD", "2"),
])
def test_bad_values_are_refused_clearly(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load(tmp_path, **{name: value})
