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

from errors import UserError
from storage.files import archive_dir, find_dir, find_file

from .checks import NotAdmin, admin_only, is_admin, scope_of, upload_limit
from .replies import send_reply

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands")

EXPENSIVE = ("train", "test", "archive", "getfile")


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


class StatusMessage:
    """One message kept up to date with a job's progress.

    Updates may arrive before the message exists or while an edit is in flight:
    only the newest text is ever shown, and edits never overtake each other.
    """

    def __init__(self, reply_to: discord.Message, header: str = ""):
        self.reply_to = reply_to
        self.header = header
        self.message: discord.Message | None = None
        self.latest: str | None = None
        self._lock = asyncio.Lock()

    def _render(self, text: str) -> str:
        return f"{self.header}\n{text}" if self.header else text

    async def send(self, text: str) -> None:
        async with self._lock:
            text, self.latest = self.latest or text, None
            self.message = (await send_reply(self.reply_to, self._render(text)))[0]

    async def update(self, status) -> None:
        self.latest = f"Training job `{status.job_id}`: {status.message}"
        async with self._lock:
            if self.message is None or self.latest is None:
                return
            text, self.latest = self.latest, None
            try:
                await self.message.edit(content=self._render(text)[:2000])
            except discord.HTTPException:
                log.exception("Could not update the status message")


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
        file = await asyncio.to_thread(find_file, root, path, max_length=self.settings.max_path_length)
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
        folder = await asyncio.to_thread(find_dir, root, directory, max_length=self.settings.max_path_length)
        async with ctx.typing():
            result = await asyncio.to_thread(archive_dir, root, folder)
        text = (f"Archived {result.file_count} file{'s' if result.file_count != 1 else ''} from `{directory}` "
                f"into `archives/{result.path.name}` ({_size(result.size)}).")
        files = None
        if result.size <= upload_limit(ctx.channel):
            data = await asyncio.to_thread(result.path.read_bytes)
            files = [discord.File(io.BytesIO(data), filename=result.path.name)]
        else:
            text += ("\nThe zip is larger than this server's upload limit, so it stays in the files folder.")
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

    # -- the model ------------------------------------------------------------------------------
    async def _selected_dataset(self, scope: str) -> str | None:
        return await self.bot.db.get_setting(scope, "dataset")

    async def _read_attachment(self, attachment: discord.Attachment) -> bytes:
        limit = self.settings.max_dataset_bytes
        if attachment.size > limit:
            raise UserError(f"`{attachment.filename}` is {_size(attachment.size)}; datasets may be at most "
                            f"{_size(limit)}.")
        return await attachment.read()

    @commands.command()
    @admin_only()
    async def train(self, ctx: commands.Context, *, args: str = "") -> None:
        """Train the model. (admins)

        `!train` + an attached CSV/TSV/JSON/JSONL/text file: save it as a dataset, select it, train.
        `!train LABEL` + a plain-text file: every line is an example of LABEL.
        `!train LABEL some text`: add one example to the selected dataset.
        `!train`: retrain on the selected dataset plus this server's corrections."""
        scope = scope_of(ctx.message)
        args = args.strip()
        notes = ""
        if ctx.message.attachments:
            attachment = ctx.message.attachments[0]
            data = await self._read_attachment(attachment)
            # `!train LABEL` + a plain-text file adds its lines to the selected dataset as LABEL.
            into = (await self._selected_dataset(scope) or "examples") if args else None
            info = await self.bot.model.save_dataset(scope, attachment.filename, data, args or None, name=into)
            await self.bot.db.set_setting(scope, "dataset", info.name)
            dataset = info.name
            notes = f"Saved dataset `{info.name}` ({info.rows} rows, {info.classes} classes) and selected it."
            if info.warnings:
                notes += "\n" + "\n".join(f"⚠️ {w}" for w in info.warnings)
            if info.classes < 2:
                await send_reply(ctx.message, notes + f"\nAdd examples of another class (e.g. "
                                                      f"`{ctx.clean_prefix}train negative` with a file) to train.")
                return
        elif args:
            label, _, text = args.partition(" ")
            if not text.strip():
                raise UserError(f"Give a label and an example: `{ctx.clean_prefix}train positive I love it`, "
                                "or attach a dataset file.")
            dataset = await self._selected_dataset(scope) or "examples"
            info = await self.bot.model.add_example(scope, dataset, label, text.strip())
            await self.bot.db.set_setting(scope, "dataset", info.name)
            await send_reply(ctx.message, f"Added an example of **{discord.utils.escape_markdown(label)}** to "
                                          f"dataset `{info.name}` ({info.rows} rows, {info.classes} classes). "
                                          f"Run `{ctx.clean_prefix}train` to retrain.")
            return
        else:
            dataset = await self._selected_dataset(scope)
            if dataset is None:
                raise UserError(f"No dataset is selected yet. Attach a dataset file to `{ctx.clean_prefix}train`, "
                                f"or pick one with `{ctx.clean_prefix}select_dataset NAME`.")
        corrections = [(c.original_text, c.correction) for c in await self.bot.db.list_corrections(scope)]
        status = StatusMessage(ctx.message, header=notes)
        job = await self.bot.model.train(scope, dataset, corrections, on_status=status.update)
        extra = f" + {len(corrections)} correction{'s' if len(corrections) != 1 else ''}" if corrections else ""
        await status.send(f"Training job `{job.id}`: queued (dataset `{dataset}`{extra}).")

    @commands.command()
    async def test(self, ctx: commands.Context, *, data: str = "") -> None:
        """Test the model on labelled or unlabelled data.

        Attach a file (same formats as `train`), or give it inline:
        `!test ["great product", "awful"]` or `!test [{"text": "great", "label": "positive"}]`."""
        scope = scope_of(ctx.message)
        if ctx.message.attachments:
            attachment = ctx.message.attachments[0]
            raw, filename = await self._read_attachment(attachment), attachment.filename
        else:
            text = data.strip().strip("`")
            if text.startswith(("json\n", "csv\n")):
                text = text.split("\n", 1)[1]
            if not text.strip():
                raise UserError(f"Attach a file to test on, or give data inline: "
                                f'`{ctx.clean_prefix}test ["great product", "awful"]`.')
            raw, filename = text.encode("utf-8"), None
        async with ctx.typing():
            report = await self.bot.model.evaluate(scope, raw, filename)
        if report.misclassified:
            await self.bot.db.add_misclassified(scope, list(report.misclassified))
        files = []
        if report.png:
            files.append(discord.File(io.BytesIO(report.png), filename="confusion_matrix.png"))
        if report.csv:
            files.append(discord.File(io.BytesIO(report.csv), filename="predictions.csv"))
        await send_reply(ctx.message, report.text, files=files or None)

    @commands.command()
    async def select_dataset(self, ctx: commands.Context, *, name: str = "") -> None:
        """List this server's datasets, or select one to train on: `!select_dataset NAME` (admins)."""
        scope = scope_of(ctx.message)
        name = name.strip()
        if name and not is_admin(self.bot, ctx.author, ctx.guild):
            raise NotAdmin("select_dataset")
        datasets = await self.bot.model.list_datasets(scope)
        selected = await self._selected_dataset(scope)
        if not name:
            if not datasets:
                await send_reply(ctx.message, f"No datasets yet. An admin can attach one to `{ctx.clean_prefix}train`.")
                return
            lines = [f"{'▶' if d.name == selected else '•'} `{d.name}`: {d.rows} rows, {d.classes} classes"
                     f"{' (shared)' if d.shared else ''}{' **(selected)**' if d.name == selected else ''}"
                     for d in datasets]
            await send_reply(ctx.message, "Datasets:\n" + "\n".join(lines))
            return
        match = next((d for d in datasets if d.name == name.lower()), None)
        if match is None:
            known = ", ".join(f"`{d.name}`" for d in datasets) or "none yet"
            raise UserError(f"There is no dataset `{name}`. Known datasets: {known}.")
        await self.bot.db.set_setting(scope, "dataset", match.name)
        await send_reply(ctx.message, f"Selected dataset `{match.name}` ({match.rows} rows, {match.classes} classes). "
                                      f"Run `{ctx.clean_prefix}train` to train on it.")

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
