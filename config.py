"""Settings: read once from the environment and `.env`, validated, then frozen.

Every knob of the bot lives here, so a self-hoster reads one file (and
`.env.example`) to know what can be changed.  Nothing else reads `os.environ`.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent

TOKEN_HELP = (
    "DISCORD_TOKEN is not set.\n"
    "Create a bot at https://discord.com/developers/applications -> your application -> Bot -> "
    "Reset Token, and turn on the MESSAGE CONTENT intent on the same page.\n"
    "Then put DISCORD_TOKEN=... in a .env file next to bot.py (see .env.example) "
    "or export it in the environment."
)

CHAT_MODES = ("everywhere", "mention", "channels")
PLAYGROUND_MODES = ("auto", "on", "off")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    discord_token: str = field(repr=False)
    data_dir: Path = ROOT / "data"
    # Where the int8 copies of the speech model and the sentence encoder are made once (default:
    # DATA_DIR); several bots (or test runs) on one machine may share one folder.
    model_copies_dir: str = ""
    owner_ids: frozenset[int] = frozenset()
    command_prefix: str = "!"
    instructions_file: Path = ROOT / "instructions.md"
    log_level: str = "INFO"
    # The privileged Message Content intent: auto (ask; without it if Discord refuses) | on | off.
    message_content: str = "auto"
    # How long to keep retrying (with backoff) when Discord can't be reached at start; 0 = once.
    connect_retry_seconds: float = 300.0

    # Limits
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_audio_seconds: float = 600.0
    decode_timeout: float = 60.0
    max_dataset_bytes: int = 10 * 1024 * 1024
    max_dataset_rows: int = 200_000
    max_path_length: int = 255
    train_queue_size: int = 4
    stt_workers: int = 1
    stt_queue_size: int = 4
    playback_queue_size: int = 10
    cooldown_seconds: float = 10.0
    # Host files (owners only): the most an archive may read, and how many archives are kept.
    archive_max_bytes: int = 200 * 1024 * 1024
    keep_archives: int = 5
    # Rows kept per server in the database: the newest N, none older than D days (0 = no limit).
    keep_replies_rows: int = 10_000
    keep_replies_days: float = 30.0
    keep_feedback_rows: int = 1_000
    keep_feedback_days: float = 365.0
    keep_corrections_rows: int = 5_000
    keep_corrections_days: float = 0.0
    # Rows a member (not an admin) may evaluate with one !test.
    test_max_rows_member: int = 1_000

    # Model
    # An extra floor on the calibrated probability of the best label (0: the learned rule alone).
    confidence_threshold: float = 0.0
    chat_mode: str = "everywhere"
    chat_channels: frozenset[int] = frozenset()
    keep_model_versions: int = 3
    # Model: memory, quotas and evaluation (issue 9)
    model_cache_bytes: int = 200 * 1024 * 1024
    max_datasets_per_server: int = 20
    max_dataset_bytes_per_server: int = 50 * 1024 * 1024
    eval_queue_size: int = 4
    # A !test reports within this many seconds: scoring stops at 60 % of it and reports a random sample.
    test_timeout_seconds: float = 30.0
    # Model: sentence encoder and learned abstention (issue 13)
    sentence_encoder: bool = True
    target_precision: float = 0.9
    oos_labels: tuple[str, ...] = ("oos", "out_of_scope")
    embedding_cache_bytes: int = 32 * 1024 * 1024

    # Speech to text
    stt_engines: tuple[str, ...] = ("whisper", "google")
    # Live voice (listening in a voice channel): local engines only by default, so it never leaves the machine.
    voice_stt_engines: tuple[str, ...] = ("whisper",)
    # What servers hear when neither they nor the member chose (`!language`): a code, or auto (detect).
    stt_language: str = "auto"
    # Every language, and detecting it: the multilingual base model ships in two packages, joined once
    # into MODEL_COPIES_DIR. English (given or detected) is heard by WHISPER_ENGLISH_MODEL instead,
    # when set: tiny.en is faster on English, base more accurate and ~80 MB lighter alone
    # (bench/stt.py --languages, bench/memory.py).
    whisper_model: str = "base"
    whisper_english_model: str = ""
    google_timeout: float = 15.0

    # Text to speech
    tts_engines: tuple[str, ...] = ("piper", "festival", "gtts", "espeak")  # each skips languages it has no voice for
    tts_language: str = "en"
    piper_voice: str = ""
    tts_max_chars: int = 400
    tts_cache_bytes: int = 50 * 1024 * 1024
    gtts_timeout: float = 10.0
    voice_idle_seconds: float = 300.0
    speak_replies: bool = True
    # Transcribe audio uploads and voice messages as they arrive (off: only the Transcribe menu).
    auto_transcribe: bool = True
    # Talking in voice (`!listen`): whether servers listen before an admin chooses; a wake word
    # that utterances must start with to be answered (empty: every utterance); the pause that
    # ends an utterance and the longest one (seconds).
    listen_default: bool = False
    listen_wake_word: str = ""
    listen_pause_seconds: float = 1.0
    listen_max_seconds: float = 20.0

    # Playground: the bot on a local Discord in your browser (playground/). auto = when there
    # is no DISCORD_TOKEN; on = always; off = never (a missing token is then an error).
    playground: str = "auto"
    playground_host: str = "127.0.0.1"  # anything but loopback lets other machines use the bot as you
    playground_port: int = 8800
    # A PLAYGROUND_HOST other than loopback is refused unless this is true: whoever has the
    # printed link (its token) then acts as the bot's owner from any machine that reaches it.
    playground_allow_remote: bool = False

    @property
    def use_playground(self) -> bool:
        return self.playground == "on" or (self.playground == "auto" and not self.discord_token)

    @property
    def copies_dir(self) -> Path:
        if not self.model_copies_dir:
            return self.data_dir
        path = Path(self.model_copies_dir).expanduser()
        return path if path.is_absolute() else Path.cwd() / path

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "bot.sqlite3"


def is_loopback_host(host: str) -> bool:
    """127.0.0.1, ::1 (any loopback address) or localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# setting name -> environment variable (the upper-cased name)
def _env_name(name: str) -> str:
    return name.upper()


def _parse_ids(raw: str, name: str) -> frozenset[int]:
    ids = set()
    for part in raw.replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit():
            raise ConfigError(f"{name} must be comma-separated numeric ids, got {part!r}")
        ids.add(int(part))
    return frozenset(ids)


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in raw.split(",") if p.strip())


def _parse_bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _convert(name: str, default: object, raw: str) -> object:
    env = _env_name(name)
    if isinstance(default, bool):
        return _parse_bool(raw, env)
    if isinstance(default, frozenset):
        return _parse_ids(raw, env)
    if isinstance(default, tuple):
        return _parse_list(raw)
    if isinstance(default, Path):
        path = Path(raw).expanduser()
        return path if path.is_absolute() else (Path.cwd() / path)
    try:
        if isinstance(default, int):
            value = int(raw)
        elif isinstance(default, float):
            value = float(raw)
        else:
            return raw
    except ValueError:
        raise ConfigError(f"{env} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{env} must not be negative, got {raw!r}")
    return value


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None,
                  playground: str | None = None) -> Settings:
    """Build Settings from `.env` (if present) overlaid by the real environment;
    `playground` (from a command-line flag) overrides PLAYGROUND."""
    values: dict[str, str] = {}
    env_file = env_file if env_file is not None else Path.cwd() / ".env"
    if env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    if playground is not None:
        values["PLAYGROUND"] = playground
    token = values.get("DISCORD_TOKEN", "").strip()
    if not token and (values.get("PLAYGROUND") or "auto").strip().lower() == "off":
        raise ConfigError(TOKEN_HELP)

    kwargs: dict[str, object] = {"discord_token": token}
    for f in fields(Settings):
        if f.name == "discord_token":
            continue
        raw = values.get(_env_name(f.name))
        if raw is None or raw.strip() == "":
            continue
        kwargs[f.name] = _convert(f.name, f.default, raw.strip())

    settings = Settings(**kwargs)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def _validate_model(s: Settings) -> None:
    if s.model_cache_bytes < 1024 * 1024:
        raise ConfigError("MODEL_CACHE_BYTES must be at least 1048576 (1 MB)")
    if s.max_datasets_per_server < 1:
        raise ConfigError("MAX_DATASETS_PER_SERVER must be at least 1")
    if s.max_dataset_bytes_per_server < 1:
        raise ConfigError("MAX_DATASET_BYTES_PER_SERVER must be at least 1")
    if s.test_timeout_seconds < 5:
        raise ConfigError("TEST_TIMEOUT_SECONDS must be at least 5 seconds")
    if not 0.0 < s.target_precision <= 1.0:
        raise ConfigError("TARGET_PRECISION must be more than 0 and at most 1")


def _validate(s: Settings) -> None:
    _validate_model(s)
    if not s.command_prefix or any(c.isspace() for c in s.command_prefix):
        raise ConfigError("COMMAND_PREFIX must be non-empty and contain no spaces")
    if s.message_content not in ("auto", "on", "off"):
        raise ConfigError(f"MESSAGE_CONTENT must be auto, on or off, got {s.message_content!r}")
    if s.playground not in PLAYGROUND_MODES:
        raise ConfigError(f"PLAYGROUND must be auto, on or off, got {s.playground!r}")
    if s.playground_port > 65535:
        raise ConfigError("PLAYGROUND_PORT must be a port number (0: any free port)")
    if s.use_playground and not is_loopback_host(s.playground_host) and not s.playground_allow_remote:
        raise ConfigError(
            f"PLAYGROUND_HOST={s.playground_host} would let other machines open the playground, and whoever "
            "has its link acts as the bot's owner (files of this host with !getfile, training, listening in "
            "voice). Use PLAYGROUND_HOST=127.0.0.1, or set PLAYGROUND_ALLOW_REMOTE=true if you mean it.")
    if not 0.2 <= s.listen_pause_seconds <= 5 or not 1 <= s.listen_max_seconds <= 120:
        raise ConfigError("LISTEN_PAUSE_SECONDS must be 0.2-5 and LISTEN_MAX_SECONDS 1-120")
    if s.chat_mode not in CHAT_MODES:
        raise ConfigError(f"CHAT_MODE must be one of {', '.join(CHAT_MODES)}, got {s.chat_mode!r}")
    if not 0.0 <= s.confidence_threshold <= 1.0:
        raise ConfigError("CONFIDENCE_THRESHOLD must be between 0 and 1")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    if not re.fullmatch(r"auto|[a-z]{2,3}([-_][a-z0-9]{2,8})?", s.stt_language.strip().lower()):
        raise ConfigError(f"STT_LANGUAGE must be auto or a language code such as en, ru, de, got {s.stt_language!r}")
    known_stt = {"whisper", "google", "sphinx"}
    known_tts = {"piper", "festival", "gtts", "espeak"}
    for name, engines, known in (("STT_ENGINES", s.stt_engines, known_stt), ("TTS_ENGINES", s.tts_engines, known_tts),
                                 ("VOICE_STT_ENGINES", s.voice_stt_engines, known_stt)):
        unknown = [e for e in engines if e not in known]
        if unknown or not engines:
            raise ConfigError(f"{name} must list engines from {', '.join(sorted(known))}, got {','.join(engines)!r}")
