"""The playground's message history on disk (DATA_DIR/playground/), so a restart keeps it.

Messages are appended to `messages.jsonl` as they are made or edited (the last line for an
id wins; a deletion is a line too), attachments are kept under `files/<id>`.  At start they
go back into the local server, so old messages can be replied to and their files opened.
Writes run in a worker thread, in order, so the event loop never waits on the disk.

The folder has a quota (`QUOTA_BYTES`, the file and the attachments together): when a write
takes it over, the oldest messages are dropped (with their files) until it uses at most
`SHRINK_TO` of it, so a playground left running for months keeps its newest history.
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
QUOTA_BYTES = 100 * 1024 * 1024  # the folder's size at most (messages.jsonl and files/)
SHRINK_TO = 0.75  # share of the quota used after the oldest history was dropped


class History:
    def __init__(self, folder: Path, quota_bytes: int | None = None):
        self.folder = folder
        self.path = folder / "messages.jsonl"
        self.files = folder / "files"
        self.quota = quota_bytes if quota_bytes is not None else QUOTA_BYTES
        self._lock = asyncio.Lock()
        self._lines = 0  # lines in the file at the last read
        self._size: int | None = None  # bytes the folder holds (measured at the first write)

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
        if self._size is None:
            self._size = self._measure()
        for att_id, data in blobs:
            path = self.files / str(att_id)
            if not path.exists():
                path.write_bytes(data)
                self._size += len(data)
        line = json.dumps(record) + "\n"
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)
        self._size += len(line.encode())
        if self._size > self.quota:
            self._compact()

    def _measure(self) -> int:
        size = self.path.stat().st_size if self.path.is_file() else 0
        return size + sum(p.stat().st_size for p in self.files.glob("*")) if self.files.is_dir() else size

    # -- loading ------------------------------------------------------------------------------
    async def restore(self, fake: FakeDiscord) -> int:
        """Put the saved messages back into `fake` (started: attachment URLs need its port);
        returns how many.  The file is compacted first: one line per kept message, and the
        files of messages no longer kept are removed."""
        async with self._lock:
            records = await asyncio.to_thread(self._compact)
        restored = 0
        for record in sorted(records, key=lambda r: r["id"]):  # oldest first, as they were made
            channel = fake.channels.get(record["channel"])
            if channel is None:
                continue
            try:
                msg = await self._message(fake, channel, record)
            except (KeyError, TypeError, ValueError):
                log.warning("playground history: skipped an unreadable message record %r", record.get("id"))
                continue
            if msg is not None:
                fake.add_message(msg)
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
            fake.add_attachment(attachment)
            msg.attachments.append(attachment)
        return msg

    def _compact(self) -> list[dict]:
        """The messages to keep (not deleted, the newest KEEP_PER_CHANNEL of each channel, and
        within the quota: newest first, to SHRINK_TO of it when over), after rewriting the file
        with only them when it holds more, and removing the files of the others."""
        records = self._read()
        per_channel: dict[int, list[dict]] = {}
        for record in sorted(records.values(), key=lambda r: r["id"]):
            if not record.get("deleted") and "channel" in record:
                per_channel.setdefault(record["channel"], []).append(record)
        kept = sorted((r for items in per_channel.values() for r in items[-KEEP_PER_CHANNEL:]), key=lambda r: r["id"])
        lines = [json.dumps(r) + "\n" for r in kept]
        sizes = [len(line.encode()) + sum(self._blob_size(a) for a in r.get("attachments", []))
                 for r, line in zip(kept, lines)]
        if sum(sizes) > self.quota:  # the oldest go first
            budget, first = int(self.quota * SHRINK_TO), len(kept)
            while first > 0 and sizes[first - 1] <= budget:
                first -= 1
                budget -= sizes[first]
            kept, lines, sizes = kept[first:], lines[first:], sizes[first:]
            log.info("playground history: over its quota of %d MB, the oldest %d message(s) dropped",
                     self.quota // 2**20, first)
        if self._lines > len(kept):
            temporary = self.path.with_suffix(".tmp")
            with temporary.open("w", encoding="utf-8") as out:
                out.writelines(lines)
            temporary.replace(self.path)
            wanted = {str(a["id"]) for r in kept for a in r.get("attachments", [])}
            for blob in self.files.glob("*") if self.files.is_dir() else []:
                if blob.name not in wanted:
                    blob.unlink()
        self._size = self._measure()
        return kept

    def _blob_size(self, attachment: dict) -> int:
        try:
            return (self.files / str(int(attachment["id"]))).stat().st_size
        except (OSError, KeyError, TypeError, ValueError):
            return 0

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
