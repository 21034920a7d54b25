"""The playground's message history on disk (DATA_DIR/playground/), so a restart keeps it.

Messages are appended to `messages.jsonl` as they are made or edited (the last line for an
id wins; a deletion is a line too), attachments are kept under `files/<id>`.  At start they
go back into the local server, so old messages can be replied to and their files opened.
Writes run in a worker thread, in order, so the event loop never waits on the disk.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from localdiscord.server import FakeDiscord
from localdiscord.state import Attachment, Message

log = logging.getLogger("playground.history")

KEEP_PER_CHANNEL = 500  # messages restored per channel (the newest)


class History:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "messages.jsonl"
        self.files = folder / "files"
        self._lock = asyncio.Lock()
        self._lines = 0  # lines in the file at the last read

    # -- saving -------------------------------------------------------------------------------
    async def save(self, msg: Message) -> None:
        """Record `msg` as it is now (ephemeral messages are not kept, as on Discord)."""
        if msg.ephemeral:
            return
        record = {
            "id": msg.id, "channel": msg.channel.id, "author": msg.author.id, "content": msg.content,
            "embeds": msg.embeds, "reference": msg.reference_id, "flags": msg.flags, "edited": msg.edited,
            "deleted": msg.deleted, "timestamp": msg.timestamp, "type": msg.message_type,
            "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type,
                             "duration": a.duration_secs} for a in msg.attachments],
        }
        blobs = [(a.id, a.data) for a in msg.attachments]
        async with self._lock:
            await asyncio.to_thread(self._write, record, blobs)

    def _write(self, record: dict, blobs: list[tuple[int, bytes]]) -> None:
        self.files.mkdir(parents=True, exist_ok=True)
        for att_id, data in blobs:
            path = self.files / str(att_id)
            if not path.exists():
                path.write_bytes(data)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    # -- loading ------------------------------------------------------------------------------
    async def restore(self, fake: FakeDiscord) -> int:
        """Put the saved messages back into `fake` (started: attachment URLs need its port);
        returns how many.  The file is compacted first: one line per kept message, and the
        files of messages no longer kept are removed."""
        records = await asyncio.to_thread(self._compact)
        restored = 0
        per_channel: dict[int, list[dict]] = {}
        for record in records:
            per_channel.setdefault(record["channel"], []).append(record)
        for channel_id, items in per_channel.items():
            channel = fake.channels.get(channel_id)
            if channel is None:
                continue
            for record in items:
                try:
                    msg = await self._message(fake, channel, record)
                except (KeyError, TypeError, ValueError):
                    log.warning("playground history: skipped an unreadable message record %r", record.get("id"))
                    continue
                if msg is not None:
                    fake.messages[msg.id] = msg
                    restored += 1
        return restored

    async def _message(self, fake: FakeDiscord, channel, record: dict) -> Message | None:
        author = fake.users.get(record["author"])
        if author is None:
            return None
        msg = Message(int(record["id"]), channel, author, record["content"], embeds=record["embeds"],
                      reference_id=record["reference"], flags=record["flags"], edited=record["edited"],
                      timestamp=record["timestamp"], message_type=record.get("type"))
        for att in record["attachments"]:
            data = await asyncio.to_thread(self._blob, att["id"])
            if data is None:
                continue
            url = f"{fake.url}/attachments/{channel.id}/{att['id']}/{att['filename']}"
            attachment = Attachment(att["id"], att["filename"], data, att["content_type"], url, att.get("duration"))
            fake.attachments[attachment.id] = attachment
            msg.attachments.append(attachment)
        return msg

    def _compact(self) -> list[dict]:
        """The messages to keep (not deleted, the newest KEEP_PER_CHANNEL of each channel, in
        order), after rewriting the file with only them when it holds more."""
        records = self._read()
        per_channel: dict[int, list[dict]] = {}
        for record in sorted(records.values(), key=lambda r: r["id"]):
            if not record.get("deleted") and "channel" in record:
                per_channel.setdefault(record["channel"], []).append(record)
        kept = [r for items in per_channel.values() for r in items[-KEEP_PER_CHANNEL:]]
        if self._lines > len(kept):
            temporary = self.path.with_suffix(".tmp")
            with temporary.open("w", encoding="utf-8") as out:
                out.writelines(json.dumps(r) + "\n" for r in kept)
            temporary.replace(self.path)
            wanted = {str(a["id"]) for r in kept for a in r.get("attachments", [])}
            for blob in self.files.glob("*") if self.files.is_dir() else []:
                if blob.name not in wanted:
                    blob.unlink()
        return kept

    def _read(self) -> dict[int, dict]:
        records: dict[int, dict] = {}
        self._lines = 0
        if not self.path.is_file():
            return records
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                self._lines = number
                try:
                    record = json.loads(line)
                    records[int(record["id"])] = record
                except (ValueError, KeyError, TypeError):
                    log.warning("playground history: skipped unreadable line %d of %s", number, self.path)
        return records

    def _blob(self, att_id: int) -> bytes | None:
        path = self.files / str(att_id)
        return path.read_bytes() if path.is_file() else None
