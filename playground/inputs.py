"""What a page's request carries, read with real checks (point 6 of the threat model in web.py).

Bad input raises `Refused`, which the page server answers with its status and
`{"error": reason}`; nothing here uses `assert` (which `python -O` removes).  The person and the
channel an action names are looked up here too: a page acts as one of the world's people, and
writes only in the server's text channels or in its own person's DM with the bot.
"""
from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from localdiscord.server import FakeDiscord
from localdiscord.state import DM_CHANNEL, TEXT_CHANNEL, Channel, User

from .world import people

FORM_OVERHEAD = 64 * 1024  # a form's fields and multipart headers beside its files
MAX_JSON = 64 * 1024  # bytes of a JSON action
MAX_FILES = 10  # attachments per message, as on Discord
MAX_VOICE_SECONDS = 3600.0

Upload = tuple[str, bytes, str | None]  # (file name, bytes, content type), as FakeDiscord.send takes them


class Refused(Exception):
    """A request the page server does not do: answered `status` with `{"error": reason}`."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def snowflake(value: Any) -> int:
    """A snowflake given as digits (or a JSON number); 0 for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 2**64 else 0
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,20}", value):
        return int(value)
    return 0


def shown(value: Any) -> str:
    return repr(value)[:40]


def text(body: dict, key: str, limit: int, *, required: bool = True) -> str:
    value = body.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise Refused(400, f"{key}: {'a' if required else 'an optional'} text of at most {limit} characters")
    return value


def duration(raw: str | None) -> float | None:
    """A voice message's length in seconds, as the page measured it."""
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_VOICE_SECONDS:
        raise Refused(400, f"duration: seconds, more than 0 and at most {MAX_VOICE_SECONDS:.0f}")
    return seconds


def content_type(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if re.fullmatch(r"[\w.+-]+/[\w.+-]+(;[\w ;=\"'.+-]*)?", value) and len(value) <= 100 else None


def safe_name(name: str) -> str:
    name = Path(name.replace("\\", "/")).name
    return re.sub(r"[^\w.\- ]", "_", name)[:100].strip(" .") or "file"


def person(fake: FakeDiscord, value: Any) -> User:
    """One of the world's people (the page acts as one of them)."""
    wanted = snowflake(value)
    found = next((u for u in people(fake) if u.id == wanted), None)
    if found is None:
        raise Refused(400, f"unknown user {shown(value)}: the page acts as one of "
                           f"{', '.join(f'{u.username} ({u.id})' for u in people(fake))}")
    return found


def channel(fake: FakeDiscord, value: Any, user: User) -> Channel:
    """A text channel of the server, or `user`'s own DM channel with the bot (never another's)."""
    found = fake.channels.get(snowflake(value))
    if found is not None and found.type == TEXT_CHANNEL and found.guild_id == fake.guild.id:
        return found
    if found is not None and found.type == DM_CHANNEL and found.recipient is not None \
            and found.recipient.id == user.id:
        return found
    raise Refused(400, f"unknown channel {shown(value)} (for {user.username}: the server's text channels "
                       f"and their own DM with {fake.bot.username})")


async def read_form(request: web.Request, max_upload: int) -> tuple[dict[str, str], list[Upload]]:
    """Fields and files of a form post (multipart with files, or url-encoded): `max_upload` bytes
    of files at the most (MAX_ATTACHMENT_BYTES), MAX_FILES of them."""
    too_big = (413, f"files are limited to {max_upload / 2**20:.0f} MB per message (MAX_ATTACHMENT_BYTES)")
    if (request.content_length or 0) > max_upload + FORM_OVERHEAD:
        raise Refused(*too_big)
    try:
        posted = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise Refused(*too_big) from None
    except ValueError as exc:
        raise Refused(400, f"malformed form: {exc}") from None
    fields: dict[str, str] = {}
    files: list[Upload] = []
    for name, value in posted.items():
        if isinstance(value, web.FileField):
            data = await asyncio.to_thread(value.file.read)  # aiohttp spools big uploads to disk
            files.append((safe_name(value.filename or "file"), data, content_type(value.content_type)))
        else:  # a form sends line breaks as CRLF; Discord's client sends them as LF
            fields[name] = str(value).replace("\r\n", "\n")
    if len(files) > MAX_FILES:
        raise Refused(400, f"at most {MAX_FILES} files per message")
    if sum(len(data) for _name, data, _type in files) > max_upload:
        raise Refused(*too_big)
    return fields, files


async def read_json(request: web.Request) -> dict:
    """The JSON object of an action (at most MAX_JSON bytes)."""
    raw = bytearray()
    async for chunk in request.content.iter_chunked(16384):
        raw += chunk
        if len(raw) > MAX_JSON:
            raise Refused(413, f"an action is at most {MAX_JSON} bytes of JSON")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Refused(400, f"malformed JSON: {str(exc)[:100]}") from None
    if not isinstance(body, dict):
        raise Refused(400, "send a JSON object")
    return body
