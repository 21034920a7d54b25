"""Entry point: `python bot.py` runs the bot with settings from the environment / `.env`."""
from __future__ import annotations

import asyncio
import logging
import logging.handlers
import shutil
import signal
import sys

import aiohttp
import discord
from discord.ext import commands

from audio.playback import keep_large_buffers_out_of_heap
from audio.transcription import TranscriptionService
from commands.kit.answers import voice_answers
from commands.kit.error_handler import handle_command_error, reply_to_interaction_error
from commands.kit.help import BotHelp
from commands.kit.i18n import SlashTranslator
from config import ConfigError, Settings, load_settings
from model.service import ModelService
from storage.database import Database, Retention
from storage.languages import LanguageSettings
from voice.connection import VoiceManager
from voice.internals import check_discord_version, load_opus
from voice.listening import ListenManager

log = logging.getLogger("bot")

EXIT_UNREACHABLE = 3

# One cog per area (RoboDanny's habit): each module ends in `async def setup(bot)`.
INITIAL_EXTENSIONS = (
    "commands.meta",
    "commands.files",
    "commands.training",
    "commands.feedback",
    "commands.voice",
    "commands.listen",
    "commands.chat",
    "commands.maintenance",
    "commands.language",
)


class ChatBot(commands.Bot):
    """The bot: settings, storage and services, shared by every command.

    Each service is made once, here, as a typed attribute the cogs use (`self.bot.voice`);
    `close()` stops them in order: hearing, voice, speech-to-text, the model, Discord, storage."""

    settings: Settings
    db: Database
    languages: LanguageSettings  # which language each server and member hears, speaks and reads
    model: ModelService
    stt: TranscriptionService
    voice: VoiceManager  # voice channels and speaking (voice/connection.py, voice/playback.py)
    listening: ListenManager | None  # hearing members; None with a discord.py voice/internals.py does not know

    def __init__(self, settings: Settings, *, message_content: bool = True, **client_options):
        """`client_options` go to discord.py's Client as they are (the playground passes the
        local server's `connector` and `guild_ready_timeout`)."""
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = message_content
        intents.voice_states = True
        super().__init__(
            # A mention works as a prefix too: it is what still works without the Message Content intent.
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=intents,
            case_insensitive=True,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=BotHelp(),
            description="A bot that talks, listens and learns.",
            **client_options,
        )
        self.settings = settings
        self.db = Database(settings.database_path, retention_of(settings))
        self.languages = LanguageSettings(self.db, default=settings.stt_language)
        self.model = ModelService(
            settings.data_dir, max_dataset_bytes=settings.max_dataset_bytes,
            max_dataset_rows=settings.max_dataset_rows, train_queue_size=settings.train_queue_size,
            keep_versions=settings.keep_model_versions, model_cache_bytes=settings.model_cache_bytes,
            max_datasets_per_scope=settings.max_datasets_per_server,
            max_dataset_bytes_per_scope=settings.max_dataset_bytes_per_server,
            eval_queue_size=settings.eval_queue_size, eval_timeout=settings.test_timeout_seconds,
            confidence_floor=settings.confidence_threshold, encoder_cache_dir=settings.copies_dir / "encoder-cache",
            use_encoder=settings.sentence_encoder, target_precision=settings.target_precision,
            oos_labels=settings.oos_labels, embedding_cache_bytes=settings.embedding_cache_bytes)
        # Models load lazily on first use, so the bot connects at once and stays small.
        keep_large_buffers_out_of_heap()  # speech models' per-call buffers go back to the OS when freed
        self.stt = TranscriptionService(
            engines=settings.stt_engines, language=settings.stt_language, whisper_model=settings.whisper_model,
            whisper_english_model=settings.whisper_english_model,
            max_bytes=settings.max_attachment_bytes, max_seconds=settings.max_audio_seconds,
            decode_timeout=settings.decode_timeout, google_timeout=settings.google_timeout,
            workers=settings.stt_workers, queue_size=settings.stt_queue_size,
            model_cache_dir=settings.copies_dir / "speech-models", voice_engines=settings.voice_stt_engines)
        self.voice = VoiceManager(self, settings, languages=self.languages)
        self.listening = None
        if check_discord_version():  # otherwise logged: listening relies on that version's internals
            self.listening = ListenManager(self, settings, db=self.db, stt=self.stt, voice=self.voice,
                                           answer=voice_answers(self.model, settings.command_prefix),
                                           languages=self.languages)
        self.voice.listener = self.listening
        self.add_listener(self.voice.on_voice_state_update)
        if self.listening is not None:
            self.add_listener(self.listening.on_voice_state_update)

    async def setup_hook(self) -> None:
        self.owner_ids = owners_of(self.application, self.settings.owner_ids)
        self.tree.error(reply_to_interaction_error)  # context menus, modals, /help
        await self.tree.set_translator(SlashTranslator())  # Russian slash names/descriptions, from the catalog
        self.settings.files_dir.mkdir(parents=True, exist_ok=True)
        await self.db.open()
        for extension in INITIAL_EXTENSIONS:
            await self.load_extension(extension)

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("Ready: logged in as %s (id %s) in %d guild(s)", self.user, self.user.id, len(self.guilds))

    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:  # type: ignore[override]
        await handle_command_error(ctx, error)

    async def close(self) -> None:
        log.info("Shutting down")
        try:
            if self.listening is not None:
                await self.listening.close()  # stop hearing before leaving the channels
            await self.voice.close()
            await self.stt.close()
            await self.model.close()
            await super().close()  # disconnects any remaining voice clients too
        finally:
            await self.db.close()


def retention_of(settings: Settings) -> dict[str, Retention]:
    return {
        "bot_replies": Retention(settings.keep_replies_days, settings.keep_replies_rows),
        "feedback": Retention(settings.keep_feedback_days, settings.keep_feedback_rows),
        "corrections": Retention(settings.keep_corrections_days, settings.keep_corrections_rows),
    }


def owners_of(app: discord.AppInfo | None, configured: frozenset[int]) -> frozenset[int]:
    """The bot's owners: OWNER_IDS plus the application's owner, or its team's admins and
    developers (the members discord.py's own `is_owner` would accept)."""
    ids = set(configured)
    if app is not None:
        if app.team is not None:
            ids.update(m.id for m in app.team.members
                       if m.role in (discord.TeamMemberRole.admin, discord.TeamMemberRole.developer))
        elif app.owner is not None:
            ids.add(app.owner.id)
    return frozenset(ids)


def setup_logging(settings: Settings) -> None:
    """discord.py's console logging plus a rotating file under DATA_DIR/logs."""
    level = getattr(logging, settings.log_level.upper())
    discord.utils.setup_logging(level=level, root=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        settings.logs_dir / "bot.log", maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("[{asctime}] [{levelname:<8}] {name}: {message}",
                                           "%Y-%m-%d %H:%M:%S", style="{"))
    logging.getLogger().addHandler(handler)


def check_environment() -> None:
    """Warn early about missing system pieces instead of failing on first use."""
    if shutil.which("ffmpeg") is None:
        log.warning("ffmpeg is not installed: audio messages and voice playback will not work "
                    "(Debian/Ubuntu: apt-get install ffmpeg)")
    if not load_opus():
        log.warning("libopus was not found: the bot cannot speak in voice channels "
                    "(Debian/Ubuntu: apt-get install libopus0)")
    try:
        import davey  # noqa: F401
    except ImportError:
        log.warning("The davey package is missing: voice needs discord.py[voice]==2.7.1 (pip install -r requirements.txt)")


async def run(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not await wait_for_discord(settings, stop):
        return 0 if stop.is_set() else EXIT_UNREACHABLE
    message_content = settings.message_content != "off"
    while True:
        result = await run_bot(settings, stop, message_content)
        if result != RETRY_WITHOUT_MESSAGE_CONTENT:
            return result
        message_content = False
        log.warning(
            "Discord refused the MESSAGE CONTENT intent (it is off for this bot in the Developer Portal), so "
            "the bot runs without it: typed commands and automatic answers in servers stop working; mentions "
            "(@bot hi), direct messages, slash commands and message menus keep working. Turn the intent on "
            "(Bot page) to get everything back, or set MESSAGE_CONTENT=off to silence this warning.")


RETRY_WITHOUT_MESSAGE_CONTENT = -1


async def run_bot(settings: Settings, stop: asyncio.Event, message_content: bool) -> int:
    """Run one bot until it stops; an exit code, or RETRY_WITHOUT_MESSAGE_CONTENT."""
    bot = ChatBot(settings, message_content=message_content)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord_token))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if runner.done() and runner.exception() is not None:
            exc = runner.exception()
            if isinstance(exc, discord.LoginFailure):
                log.error("Discord rejected the token (DISCORD_TOKEN): reset it in the Developer Portal.")
                return 1
            if isinstance(exc, discord.PrivilegedIntentsRequired):
                if settings.message_content == "auto" and message_content:
                    return RETRY_WITHOUT_MESSAGE_CONTENT
                log.error("Turn on the MESSAGE CONTENT intent for the bot in the Developer Portal (Bot page), "
                          "or set MESSAGE_CONTENT=auto to run without it.")
                return 1
            if is_unreachable(exc):
                log.error("Lost Discord while logging in (%s). Exiting; start the bot again when the "
                          "network is back.", describe_unreachable(exc))
                return EXIT_UNREACHABLE
            raise exc
        await bot.close()
        runner.cancel()
    return 0


def is_unreachable(exc: BaseException) -> bool:
    """DNS failures, refused or timed-out connections: the network, not the bot."""
    return isinstance(exc, (aiohttp.ClientConnectionError, OSError, asyncio.TimeoutError))


def describe_unreachable(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the name of Discord's server could not be resolved"
    if isinstance(exc, asyncio.TimeoutError):
        return "the connection timed out"
    return str(exc) or type(exc).__name__


async def wait_for_discord(settings: Settings, stop: asyncio.Event) -> bool:
    """Wait until Discord's API answers at all, retrying with exponential backoff for at
    most CONNECT_RETRY_SECONDS; False when it never did (or we were asked to stop).

    Checked before logging in so a machine that boots before its network, or a DNS
    hiccup, gets one clear line per attempt instead of a raw aiohttp traceback."""
    url = discord.http.Route.BASE + "/gateway"
    deadline = loop_time() + settings.connect_retry_seconds
    delay = 1.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while True:
            try:
                async with session.get(url) as response:
                    await response.read()  # any HTTP answer means Discord is reachable
                return True
            except (aiohttp.ClientConnectionError, OSError, asyncio.TimeoutError) as exc:
                reason = describe_unreachable(exc)
            remaining = deadline - loop_time()
            if remaining <= 0:
                log.error("Discord cannot be reached (%s). Gave up after %g s (CONNECT_RETRY_SECONDS); "
                          "check the network and start the bot again.", reason, settings.connect_retry_seconds)
                return False
            wait = min(delay, remaining)
            log.warning("Discord cannot be reached (%s); retrying in %.0f s.", reason, wait)
            try:
                await asyncio.wait_for(stop.wait(), wait)
                return False  # asked to stop while waiting
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 60.0)


def loop_time() -> float:
    return asyncio.get_running_loop().time()


# Command-line flags that force a mode (the PLAYGROUND setting does the same).
MODE_FLAGS = {"--playground": "on", "--discord": "off"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    unknown = [a for a in args if a not in MODE_FLAGS]
    if unknown or len(args) > 1:
        print(f"usage: bot.py [--playground | --discord] (got {' '.join(args)})", file=sys.stderr)
        return 2
    try:
        settings = load_settings(playground=MODE_FLAGS[args[0]] if args else None)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    check_environment()
    try:
        if settings.use_playground:  # no token (or asked for): a local Discord in the browser
            from playground.runner import run_playground
            return asyncio.run(run_playground(settings, ChatBot))
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
