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

from errors import Phrase, UserError
from storage.attachments import Outgoing
from storage.files import format_size

from .kit.checks import NotServerAdmin, is_server_admin, owner_exempt_cooldown, scope_of, server_admin_only
from .kit.i18n import Words, words_for
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
            raise UserError(Phrase("`{file}` is {size}; datasets may be at most {limit}.", file=attachment.filename,
                                   size=format_size(attachment.size), limit=format_size(limit)))
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
        _ = await words_for(ctx)
        await ctx.defer()  # slash: "thinking…" while a large upload is parsed
        if file is None and label.lower() == "sample" and not text:
            info = await self.bot.model.save_dataset(scope, SAMPLE_DATASET.name, SAMPLE_DATASET.read_bytes(),
                                                     name="sample")
            await self.bot.db.set_setting(scope, "dataset", info.name)
            dataset = info.name
            notes = _("Saved the sample dataset as `{name}` and selected it (topics: {topics}).", name=info.name,
                      topics=", ".join(info.labels))
        elif file is not None:
            data = await self._read_attachment(file)
            # `!train LABEL` + a plain-text file adds its lines to the selected dataset as LABEL.
            into = (await self._selected_dataset(scope) or "examples") if label else None
            info = await self.bot.model.save_dataset(scope, file.filename, data, label or None, name=into)
            await self.bot.db.set_setting(scope, "dataset", info.name)
            dataset = info.name
            notes = _("Saved dataset `{name}` ({size}) and selected it.", name=info.name,
                      size=dataset_size(_, info.rows, info.classes))
            if info.warnings:
                notes += "\n" + "\n".join(f"⚠️ {_(w)}" for w in info.warnings)
            if info.classes < 2:
                await respond(ctx, notes + "\n" + _("Add examples of another class (e.g. `{prefix}train negative` with "
                                                    "a file) to train.", prefix=ctx.clean_prefix))
                return
        elif label:
            if not text:
                raise UserError(Phrase("Give a label and an example: `{prefix}train positive I love it`, or attach a "
                                       "dataset file.", prefix=ctx.clean_prefix))
            dataset = await self._selected_dataset(scope) or "examples"
            info = await self.bot.model.add_example(scope, dataset, label, text)
            await self.bot.db.set_setting(scope, "dataset", info.name)
            await respond(ctx, _("Added an example of **{label}** to dataset `{name}` ({size}). Run `{prefix}train` "
                                 "to retrain.", label=discord.utils.escape_markdown(label), name=info.name,
                                 size=dataset_size(_, info.rows, info.classes), prefix=ctx.clean_prefix))
            return
        else:
            dataset = await self._selected_dataset(scope)
            if dataset is None:
                raise UserError(Phrase("No dataset is selected yet. Attach a dataset file to `{prefix}train`, or pick "
                                       "one with `{prefix}select_dataset NAME`.", prefix=ctx.clean_prefix))
        corrections = [(c.original_text, c.correction) for c in await self.bot.db.list_corrections(scope)]
        status = StatusMessage(ctx, _, header=notes, corrections=len(corrections))
        job = await self.bot.model.train(scope, dataset, corrections, on_status=status.update)
        if corrections:
            await status.send(_.n("Training job `{job}`: queued (dataset `{dataset}` + {count} correction).",
                                  "Training job `{job}`: queued (dataset `{dataset}` + {count} corrections).",
                                  len(corrections), job=job.id, dataset=dataset))
        else:
            await status.send(_("Training job `{job}`: queued (dataset `{dataset}`).", job=job.id, dataset=dataset))

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
        _ = await words_for(ctx)
        await ctx.defer()  # slash: reading a big upload can take longer than Discord's 3 s
        if file is not None:
            raw, filename = await self._read_attachment(file), file.filename
        else:
            text = data.strip().strip("`")
            if text.startswith(("json\n", "csv\n")):
                text = text.split("\n", 1)[1]
            if not text.strip():
                raise UserError(Phrase('Attach a file to test on, or give data inline: `{prefix}test ["great product", '
                                       '"awful"]`.', prefix=ctx.clean_prefix))
            raw, filename = text.encode("utf-8"), None
        cap = None if is_server_admin(self.bot, ctx.author, ctx.guild) else self.settings.test_max_rows_member
        # A status message at once, edited with the worker's progress, then edited into the report.
        status = StatusMessage(ctx, _)
        await status.send(_("🧪 Testing: starting…"))
        try:
            report = await self.bot.model.evaluate(
                scope, raw, filename, max_rows=cap,
                on_progress=lambda line: status.show(_("🧪 Testing: {step}", step=_(line))))
        except UserError as exc:
            await status.finish(_("🧪 Testing stopped: {reason}", reason=_(exc.user_message)))
            return
        except Exception:
            await status.finish(_("🧪 Testing stopped: something went wrong. It has been logged."))
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
        _ = await words_for(ctx)
        await ctx.defer()  # slash: listing reads every dataset's summary from disk
        datasets = await self.bot.model.list_datasets(scope)
        selected = await self._selected_dataset(scope)
        if not name:
            if not datasets:
                await respond(ctx, _("No datasets yet. An admin can attach one to `{prefix}train`.",
                                     prefix=ctx.clean_prefix))
                return
            shared, chosen = " " + _("(shared)"), " **" + _("(selected)") + "**"
            lines = [f"{'▶' if d.name == selected else '•'} `{d.name}`: {dataset_size(_, d.rows, d.classes)}"
                     f"{shared if d.shared else ''}{chosen if d.name == selected else ''}"
                     for d in datasets]
            await respond(ctx, _("Datasets:") + "\n" + "\n".join(lines))
            return
        match = next((d for d in datasets if d.name == name.lower()), None)
        if match is None:
            if not datasets:
                raise UserError(Phrase("There is no dataset `{name}`. Known datasets: none yet.", name=name))
            raise UserError(Phrase("There is no dataset `{name}`. Known datasets: {known}.", name=name,
                                   known=", ".join(f"`{d.name}`" for d in datasets)))
        await self.bot.db.set_setting(scope, "dataset", match.name)
        await respond(ctx, _("Selected dataset `{name}` ({size}). Run `{prefix}train` to train on it.", name=match.name,
                             size=dataset_size(_, match.rows, match.classes), prefix=ctx.clean_prefix))

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
            raise UserError(Phrase("This server has no uploaded dataset `{name}`.", name=name.strip()))
        if await self._selected_dataset(scope) == name.strip().lower():
            await self.bot.db.delete_setting(scope, "dataset")
        _ = await words_for(ctx)
        await respond(ctx, _("Deleted dataset `{name}`. The trained model stays until you train again.",
                             name=name.strip()))


    @select_dataset.autocomplete("name")
    @delete_dataset.autocomplete("name")
    async def dataset_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """This server's datasets (and the shared ones) whose name contains what was typed."""
        scope = scope_of(interaction)
        datasets = await self.bot.model.list_datasets(scope)
        _ = await words_for(interaction)
        return [app_commands.Choice(name=f"{d.name} ({dataset_size(_, d.rows, d.classes)})"[:100], value=d.name)
                for d in datasets if current.lower() in d.name][:25]


def dataset_size(_: Words, rows: int, classes: int) -> str:
    """Like "12 rows, 3 classes", each number with its plural in the reader's language."""
    counted = (_.n("{count} row", "{count} rows", rows), _.n("{count} class", "{count} classes", classes))
    return ", ".join(counted)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Training(bot))
