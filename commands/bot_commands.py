"""Every `!command` of the bot, in one module.

These functions only adapt Discord to the helpers: parse what the user gave,
call `storage/`, `model/` or `audio/`, and turn the result into a reply.
Errors carrying a `user_message` are left to the bot's one error handler.
"""
from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from storage.files import SandboxError, archive_dir, find_dir, find_file

from .checks import NotAdmin, admin_only, is_admin, scope_of, upload_limit
from .replies import send_reply

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands")

EXPENSIVE = ("train", "test", "archive", "getfile")


class UserError(Exception):
    """A problem with what the user asked for; `user_message` is shown as the reply."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


class BotCommands(commands.Cog, name="Commands"):
    def __init__(self, bot: ChatBot):
        self.bot = bot
        self.settings = bot.settings
        if self.settings.cooldown_seconds > 0:
            for name in EXPENSIVE:
                command: commands.Command = getattr(self, name)
                command._buckets = commands.CooldownMapping.from_cooldown(  # per-user cooldown from config
                    1, self.settings.cooldown_seconds, commands.BucketType.user)

    # -- greeting and help ----------------------------------------------------------------------
    @commands.command()
    async def hi(self, ctx: commands.Context) -> None:
        """Say hello."""
        await send_reply(ctx.message, f"Hi {ctx.author.display_name}! 👋 I answer messages, listen to voice "
                                      f"messages and can speak in voice channels. Try `{ctx.clean_prefix}help`.")

    @commands.command()
    async def instruction(self, ctx: commands.Context) -> None:
        """Send the bot's instructions (every command, with examples)."""
        path = self.settings.instructions_file
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            raise UserError("The instructions file is missing; ask the bot's owner to restore it "
                            f"(INSTRUCTIONS_FILE, currently `{path.name}`).") from None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("Cannot read instructions file %s: %s", path, exc)
            raise UserError("The instructions file cannot be read; ask the bot's owner to check it.") from None
        if not text.strip():
            raise UserError("The instructions file is empty; ask the bot's owner to write some instructions.")
        await send_reply(ctx.message, text.replace("{prefix}", ctx.clean_prefix))

    # -- files ----------------------------------------------------------------------------------
    @commands.command()
    @admin_only()
    async def getfile(self, ctx: commands.Context, *, path: str) -> None:
        """Send a file from the bot's files folder. (admins)

        PATH is relative to the files folder, e.g. `!getfile reports/today.txt`."""
        root = self.settings.files_dir
        try:
            file = await asyncio.to_thread(find_file, root, path, max_length=self.settings.max_path_length)
        except SandboxError as exc:
            raise UserError(exc.user_message) from None
        size = file.stat().st_size
        limit = upload_limit(ctx.channel)
        if size > limit:
            raise UserError(f"`{file.name}` is {_size(size)}, larger than this server's upload limit "
                            f"({_size(limit)}), so I can't attach it.")
        data = await asyncio.to_thread(file.read_bytes)
        await send_reply(ctx.message, f"`{file.relative_to(root.resolve())}` ({_size(size)})",
                         files=[discord.File(io.BytesIO(data), filename=file.name)])

    @commands.command()
    @admin_only()
    async def archive(self, ctx: commands.Context, *, directory: str) -> None:
        """Zip a folder of the files folder and send the zip. (admins)

        DIRECTORY is relative to the files folder, e.g. `!archive reports` (`.` for all of it)."""
        root = self.settings.files_dir
        try:
            folder = await asyncio.to_thread(find_dir, root, directory, max_length=self.settings.max_path_length)
        except SandboxError as exc:
            raise UserError(exc.user_message) from None
        async with ctx.typing():
            result = await asyncio.to_thread(archive_dir, root, folder)
        text = (f"Archived {result.file_count} file{'s' if result.file_count != 1 else ''} from `{directory}` "
                f"into `archives/{result.path.name}` ({_size(result.size)}).")
        files = None
        if result.size <= upload_limit(ctx.channel):
            data = await asyncio.to_thread(result.path.read_bytes)
            files = [discord.File(io.BytesIO(data), filename=result.path.name)]
        else:
            text += (f"\nThe zip is larger than this server's upload limit, so it stays in the files folder.")
        await send_reply(ctx.message, text, files=files)

    # -- feedback and corrections ---------------------------------------------------------------
    @commands.command()
    async def feedback(self, ctx: commands.Context, *, text: str = "") -> None:
        """Tell the bot's admins what you think, e.g. `!feedback the answers are great`.

        Send it as a reply to one of my messages to say which answer you mean."""
        text = text.strip()
        if not text:
            raise UserError(f"Please write your feedback after the command, e.g. "
                            f"`{ctx.clean_prefix}feedback the answers are great`.")
        replied = await self._referenced_message(ctx)
        await self.bot.db.add_feedback(scope_of(ctx.message), ctx.channel.id, ctx.author.id, text,
                                       replied.id if replied else None, replied.content if replied else None)
        await send_reply(ctx.message, "Thanks for the feedback! It has been saved for the admins.")

    @commands.command()
    async def correct(self, ctx: commands.Context, *, text: str = "") -> None:
        """Correct one of my answers: reply to it with `!correct RIGHT ANSWER`,
        or give its id: `!correct MESSAGE_ID RIGHT ANSWER`.

        Corrections are used the next time the model is trained."""
        text = text.strip()
        target_id: int | None = None
        replied = await self._referenced_message(ctx)
        if replied is not None:
            target_id = replied.id
        else:
            first, _, rest = text.partition(" ")
            if first.isdigit():
                target_id, text = int(first), rest.strip()
        if target_id is None:
            raise UserError(f"Reply to one of my messages with `{ctx.clean_prefix}correct RIGHT ANSWER`, "
                            f"or use `{ctx.clean_prefix}correct MESSAGE_ID RIGHT ANSWER`.")
        if not text:
            raise UserError(f"Please say what the right answer is: `{ctx.clean_prefix}correct RIGHT ANSWER`.")
        scope = scope_of(ctx.message)
        original, bot_reply = await self._exchange(ctx, scope, target_id, replied)
        await self.bot.db.add_correction(scope, ctx.channel.id, ctx.author.id, target_id, original, bot_reply, text)
        await send_reply(ctx.message, f"Thanks! Noted that the answer should be **{discord.utils.escape_markdown(text)}**. "
                                      "It will be used the next time the model is trained.")

    async def _referenced_message(self, ctx: commands.Context) -> discord.Message | None:
        ref = ctx.message.reference
        if ref is None or ref.message_id is None:
            return None
        if isinstance(ref.resolved, discord.Message):
            return ref.resolved
        try:
            return await ctx.channel.fetch_message(ref.message_id)
        except discord.HTTPException:
            return None

    async def _exchange(self, ctx: commands.Context, scope: str, bot_message_id: int,
                        message: discord.Message | None) -> tuple[str, str]:
        """(user's original text, bot's reply) for a bot message being corrected."""
        recorded = await self.bot.db.get_bot_reply(scope, bot_message_id)
        if recorded is not None:
            return recorded.user_text, recorded.reply_text
        if message is None:
            try:
                message = await ctx.channel.fetch_message(bot_message_id)
            except discord.HTTPException:
                raise UserError(f"I can't find message {bot_message_id} in this channel.") from None
        if self.bot.user is None or message.author.id != self.bot.user.id:
            raise UserError("That isn't one of my messages; reply to one of my answers to correct it.")
        original = message.reference.resolved if message.reference else None
        if original is None and message.reference is not None and message.reference.message_id:
            try:
                original = await ctx.channel.fetch_message(message.reference.message_id)
            except discord.HTTPException:
                original = None
        if not isinstance(original, discord.Message):
            raise UserError("That message of mine wasn't an answer to someone, so there is nothing to correct.")
        return original.content, message.content

    # -- later issues ---------------------------------------------------------------------------
    async def _not_yet(self, ctx: commands.Context) -> None:
        await send_reply(ctx.message, f"`{ctx.clean_prefix}{ctx.command}` is not available yet.")

    @commands.command()
    @admin_only()
    async def train(self, ctx: commands.Context, *, args: str = "") -> None:
        """Train the model. (admins)"""
        await self._not_yet(ctx)

    @commands.command()
    async def test(self, ctx: commands.Context, *, data: str = "") -> None:
        """Test the model on data."""
        await self._not_yet(ctx)

    @commands.command()
    async def select_dataset(self, ctx: commands.Context, *, name: str = "") -> None:
        """List datasets, or select one to train on."""
        if name.strip() and not is_admin(self.bot, ctx.author, ctx.guild):
            raise NotAdmin("select_dataset")
        await self._not_yet(ctx)

    @commands.command()
    @commands.guild_only()
    async def join(self, ctx: commands.Context) -> None:
        """Join your voice channel (or move to it)."""
        await self.bot.voice.join(ctx)

    @commands.command()
    @commands.guild_only()
    async def leave(self, ctx: commands.Context) -> None:
        """Leave the voice channel."""
        await self.bot.voice.leave(ctx)
