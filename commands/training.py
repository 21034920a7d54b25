"""The model: training, testing and choosing datasets, per server.

A server's admins (Manage Server) train and choose datasets for their own server;
anyone may test, with a row cap for members.  The work itself (parsing, training,
evaluation) happens in `model/`, in worker processes.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import UserError
from storage.attachments import Outgoing
from storage.files import format_size

from .kit.checks import NotServerAdmin, is_server_admin, owner_exempt_cooldown, scope_of, server_admin_only
from .kit.replies import fit_files, respond
from .kit.status import StatusMessage

if TYPE_CHECKING:
    from bot import ChatBot

# `!train sample`: a small dataset shipped with the bot (chat-like messages in a few topics,
# each with a sentence to answer), so a server can try training before it has data of its own.
SAMPLE_DATASET = Path(__file__).resolve().parent.parent / "playground" / "sample" / "sample_intents.csv"


class Training(commands.Cog, name="Model"):
    """Train and test this server's model."""

    def __init__(self, bot: ChatBot):
        self.bot = bot
        self.settings = bot.settings

    async def _selected_dataset(self, scope: str) -> str | None:
        return await self.bot.db.get_setting(scope, "dataset")

    async def _read_attachment(self, attachment: discord.Attachment) -> bytes:
        limit = self.settings.max_dataset_bytes
        if attachment.size > limit:
            raise UserError(f"`{attachment.filename}` is {format_size(attachment.size)}; datasets may be at most "
                            f"{format_size(limit)}.")
        return await attachment.read()

    @commands.hybrid_command()
    @server_admin_only()
    @owner_exempt_cooldown()
    @app_commands.default_permissions(manage_guild=True)  # slash: offered to server admins only
    @app_commands.describe(file="A dataset: CSV/TSV/JSON/JSONL, or plain text with one example per line",
                           label="The label of every line of a plain-text file, or of one example",
                           text="One example to add (with a label) instead of a file")
    async def train(self, ctx: commands.Context, file: discord.Attachment | None = None,
                    label: str | None = None, *, text: str | None = None) -> None:
        """Train the model. (server admins)

        `!train` + an attached CSV/TSV/JSON/JSONL/text file: save it as a dataset, select it, train.
        `!train LABEL` + a plain-text file: every line is an example of LABEL.
        `!train LABEL some text`: add one example to the selected dataset.
        `!train`: retrain on the selected dataset plus this server's corrections.
        `!train sample`: train on the small sample dataset that comes with the bot."""
        scope = scope_of(ctx)
        label, text = (label or "").strip(), (text or "").strip()
        notes = ""
        await ctx.defer()  # slash: "thinking…" while a large upload is parsed
        if file is None and label.lower() == "sample" and not text:
            info = await self.bot.model.save_dataset(scope, SAMPLE_DATASET.name, SAMPLE_DATASET.read_bytes(),
                                                     name="sample")
            await self.bot.db.set_setting(scope, "dataset", info.name)
            dataset = info.name
            notes = f"Saved the sample dataset as `{info.name}` and selected it (topics: {', '.join(info.labels)})."
        elif file is not None:
            data = await self._read_attachment(file)
            # `!train LABEL` + a plain-text file adds its lines to the selected dataset as LABEL.
            into = (await self._selected_dataset(scope) or "examples") if label else None
            info = await self.bot.model.save_dataset(scope, file.filename, data, label or None, name=into)
            await self.bot.db.set_setting(scope, "dataset", info.name)
            dataset = info.name
            notes = f"Saved dataset `{info.name}` ({info.rows} rows, {info.classes} classes) and selected it."
            if info.warnings:
                notes += "\n" + "\n".join(f"⚠️ {w}" for w in info.warnings)
            if info.classes < 2:
                await respond(ctx, notes + f"\nAdd examples of another class (e.g. "
                                           f"`{ctx.clean_prefix}train negative` with a file) to train.")
                return
        elif label:
            if not text:
                raise UserError(f"Give a label and an example: `{ctx.clean_prefix}train positive I love it`, "
                                "or attach a dataset file.")
            dataset = await self._selected_dataset(scope) or "examples"
            info = await self.bot.model.add_example(scope, dataset, label, text)
            await self.bot.db.set_setting(scope, "dataset", info.name)
            await respond(ctx, f"Added an example of **{discord.utils.escape_markdown(label)}** to "
                               f"dataset `{info.name}` ({info.rows} rows, {info.classes} classes). "
                               f"Run `{ctx.clean_prefix}train` to retrain.")
            return
        else:
            dataset = await self._selected_dataset(scope)
            if dataset is None:
                raise UserError(f"No dataset is selected yet. Attach a dataset file to `{ctx.clean_prefix}train`, "
                                f"or pick one with `{ctx.clean_prefix}select_dataset NAME`.")
        corrections = [(c.original_text, c.correction) for c in await self.bot.db.list_corrections(scope)]
        status = StatusMessage(ctx, header=notes, corrections=len(corrections))
        job = await self.bot.model.train(scope, dataset, corrections, on_status=status.update)
        extra = f" + {len(corrections)} correction{'s' if len(corrections) != 1 else ''}" if corrections else ""
        await status.send(f"Training job `{job.id}`: queued (dataset `{dataset}`{extra}).")

    @commands.hybrid_command()
    @owner_exempt_cooldown()
    @app_commands.describe(file="Labelled or unlabelled data, same formats as /train",
                           data='Or inline data: ["great product", "awful"] or [{"text": "great", "label": "positive"}]')
    async def test(self, ctx: commands.Context, file: discord.Attachment | None = None, *, data: str = "") -> None:
        """Test the model on labelled or unlabelled data.

        Attach a file (same formats as `train`), or give it inline:
        `!test ["great product", "awful"]` or `!test [{"text": "great", "label": "positive"}]`.
        Members who are not admins may test up to TEST_MAX_ROWS_MEMBER rows at a time."""
        scope = scope_of(ctx)
        await self.bot.model.check_can_evaluate(scope)  # busy or untrained: say so before reading anything
        await ctx.defer()  # slash: reading a big upload can take longer than Discord's 3 s
        if file is not None:
            raw, filename = await self._read_attachment(file), file.filename
        else:
            text = data.strip().strip("`")
            if text.startswith(("json\n", "csv\n")):
                text = text.split("\n", 1)[1]
            if not text.strip():
                raise UserError(f"Attach a file to test on, or give data inline: "
                                f'`{ctx.clean_prefix}test ["great product", "awful"]`.')
            raw, filename = text.encode("utf-8"), None
        cap = None if is_server_admin(self.bot, ctx.author, ctx.guild) else self.settings.test_max_rows_member
        # A status message at once, edited with the worker's progress, then edited into the report.
        status = StatusMessage(ctx)
        await status.send("🧪 Testing: starting…")
        try:
            report = await self.bot.model.evaluate(scope, raw, filename, max_rows=cap,
                                                   on_progress=lambda line: status.show(f"🧪 Testing: {line}"))
        except UserError as exc:
            await status.finish(f"🧪 Testing stopped: {exc.user_message}")
            return
        except Exception:
            await status.finish("🧪 Testing stopped: something went wrong. It has been logged.")
            raise
        files = []
        if report.png:
            files.append(Outgoing("confusion_matrix.png", report.png))
        if report.csv:
            files.append(Outgoing("predictions.csv", report.csv))
        await status.finish(*await fit_files(ctx, report.text, files))

    @commands.hybrid_command()
    @app_commands.describe(name="The dataset to select (leave empty to list them)")
    async def select_dataset(self, ctx: commands.Context, *, name: str = "") -> None:
        """List this server's datasets, or select one to train on: `!select_dataset NAME` (server admins)."""
        scope = scope_of(ctx)
        name = name.strip()
        if name and not is_server_admin(self.bot, ctx.author, ctx.guild):
            raise NotServerAdmin("select_dataset")
        await ctx.defer()  # slash: listing reads every dataset's summary from disk
        datasets = await self.bot.model.list_datasets(scope)
        selected = await self._selected_dataset(scope)
        if not name:
            if not datasets:
                await respond(ctx, f"No datasets yet. An admin can attach one to `{ctx.clean_prefix}train`.")
                return
            lines = [f"{'▶' if d.name == selected else '•'} `{d.name}`: {d.rows} rows, {d.classes} classes"
                     f"{' (shared)' if d.shared else ''}{' **(selected)**' if d.name == selected else ''}"
                     for d in datasets]
            await respond(ctx, "Datasets:\n" + "\n".join(lines))
            return
        match = next((d for d in datasets if d.name == name.lower()), None)
        if match is None:
            known = ", ".join(f"`{d.name}`" for d in datasets) or "none yet"
            raise UserError(f"There is no dataset `{name}`. Known datasets: {known}.")
        await self.bot.db.set_setting(scope, "dataset", match.name)
        await respond(ctx, f"Selected dataset `{match.name}` ({match.rows} rows, {match.classes} classes). "
                                      f"Run `{ctx.clean_prefix}train` to train on it.")

    @commands.hybrid_command()
    @server_admin_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(name="The dataset to delete")
    async def delete_dataset(self, ctx: commands.Context, *, name: str) -> None:
        """Delete one of this server's uploaded datasets, to free its quota. (server admins)

        Shared datasets placed on the host by the bot's owners are never deleted."""
        scope = scope_of(ctx)
        await ctx.defer()  # slash: deleting a large dataset's files can take a while
        if not await self.bot.model.delete_dataset(scope, name.strip()):
            raise UserError(f"This server has no uploaded dataset `{name.strip()}`.")
        if await self._selected_dataset(scope) == name.strip().lower():
            await self.bot.db.delete_setting(scope, "dataset")
        await respond(ctx, f"Deleted dataset `{name.strip()}`. The trained model stays until you train again.")


    @select_dataset.autocomplete("name")
    @delete_dataset.autocomplete("name")
    async def dataset_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """This server's datasets (and the shared ones) whose name contains what was typed."""
        scope = scope_of(interaction)
        datasets = await self.bot.model.list_datasets(scope)
        return [app_commands.Choice(name=f"{d.name} ({d.rows} rows, {d.classes} classes)", value=d.name)
                for d in datasets if current.lower() in d.name][:25]


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Training(bot))
