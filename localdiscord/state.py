"""The world the fake Discord holds: users, guilds, channels, messages, files.

Plain data plus the payload builders that turn it into Discord API v10 JSON,
kept apart from the HTTP/websocket plumbing (gateway.py, rest.py, the interaction routes).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

# Permission bits (https://discord.com/developers/docs/topics/permissions)
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
CONNECT = 1 << 20
SPEAK = 1 << 21
MEMBER_PERMISSIONS = (VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
                      | ADD_REACTIONS | CONNECT | SPEAK)

# Gateway intents
INTENT_MESSAGE_CONTENT = 1 << 15

ALL_PERMISSIONS = (1 << 51) - 1  # what Discord reports for a guild owner or an Administrator

# Message flags
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7  # a deferred interaction response ("Bot is thinking...")
FLAG_VOICE_MESSAGE = 1 << 13

TEXT_CHANNEL = 0
DM_CHANNEL = 1
VOICE_CHANNEL = 2

_EPOCH_MS = 1420070400000
_counter = itertools.count(1)


def snowflake() -> int:
    """A unique, time-ordered id shaped like Discord's."""
    return ((int(time.time() * 1000) - _EPOCH_MS) << 22) | (next(_counter) & 0x3FFFFF)


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    locale: str = "en-US"  # the language of their Discord client: interactions carry it as `locale`

    def payload(self) -> dict:
        return {"id": str(self.id), "username": self.username, "discriminator": "0",
                "global_name": self.username, "avatar": None, "bot": self.bot}


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0

    def payload(self) -> dict:
        return {"id": str(self.id), "name": self.name, "permissions": str(self.permissions),
                "position": self.position, "color": 0, "hoist": False, "managed": False,
                "mentionable": False, "flags": 0}


@dataclass
class Channel:
    id: int
    name: str
    type: int
    guild_id: int | None = None
    recipient: User | None = None  # DMs

    def payload(self) -> dict:
        data = {"id": str(self.id), "name": self.name, "type": self.type, "position": 0,
                "permission_overwrites": [], "nsfw": False, "parent_id": None}
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.type == VOICE_CHANNEL:
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
        if self.recipient is not None:
            data["recipients"] = [self.recipient.payload()]
            data["last_message_id"] = None
        return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)  # user id -> role ids
    voice_states: dict[int, int] = field(default_factory=dict)  # user id -> voice channel id
    premium_tier: int = 0
    preferred_locale: str = "en-US"  # a Community server's primary language (Server Settings → Overview)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    def permissions(self, user_id: int) -> int:
        """Guild-level permissions as Discord computes them (no channel overwrites here)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.everyone.permissions
        for role_id in self.members.get(user_id, []):
            value |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def member_payload(self, user: User) -> dict:
        return {"user": user.payload(), "roles": [str(r) for r in self.members[user.id]],
                "joined_at": iso_now(), "deaf": False, "mute": False, "flags": 0, "nick": None}

    def voice_state_payload(self, user: User, channel_id: int | None, session_id: str = "") -> dict:
        return {"guild_id": str(self.id), "channel_id": str(channel_id) if channel_id else None,
                "user_id": str(user.id), "member": self.member_payload(user), "session_id": session_id or "s",
                "deaf": False, "mute": False, "self_deaf": False, "self_mute": False,
                "self_video": False, "suppress": False, "request_to_speak_timestamp": None}

    def update_payload(self) -> dict:
        """The guild object as GUILD_UPDATE carries it: no members, channels or voice states (those are
        GUILD_CREATE's)."""
        return {
            "id": str(self.id), "name": self.name, "owner_id": str(self.owner_id), "icon": None,
            "premium_tier": self.premium_tier, "features": [], "emojis": [], "stickers": [],
            "roles": [r.payload() for r in self.roles.values()],
            "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "system_channel_id": None,
            "preferred_locale": self.preferred_locale, "nsfw_level": 0, "premium_progress_bar_enabled": False,
        }

    def payload(self, users: dict[int, User]) -> dict:
        """The guild object as GUILD_CREATE carries it."""
        return {
            **self.update_payload(),
            "unavailable": False, "large": False, "member_count": len(self.members),
            "channels": [c.payload() for c in self.channels.values()],
            "members": [self.member_payload(users[uid]) for uid in self.members],
            "voice_states": [self.voice_state_payload(users[u], c) for u, c in self.voice_states.items()],
            "presences": [], "threads": [], "stage_instances": [], "guild_scheduled_events": [],
            "joined_at": iso_now(),
        }


@dataclass
class Attachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    duration_secs: float | None = None

    def payload(self) -> dict:
        data = {"id": str(self.id), "filename": self.filename, "size": len(self.data), "url": self.url,
                "proxy_url": self.url}
        if self.content_type:
            data["content_type"] = self.content_type
        if self.duration_secs is not None:
            data["duration_secs"] = self.duration_secs
            data["waveform"] = "AAAA"
        return data


@dataclass
class Message:
    id: int
    channel: Channel
    author: User
    content: str
    attachments: list[Attachment] = field(default_factory=list)
    embeds: list[dict] = field(default_factory=list)
    reference_id: int | None = None
    mentions: list[User] = field(default_factory=list)
    flags: int = 0
    edited: bool = False
    deleted: bool = False
    timestamp: str = field(default_factory=iso_now)
    edits: list[str] = field(default_factory=list)  # every earlier content, oldest first
    # Interaction responses and follow-ups (see interaction_routes.py): only the invoking user sees an
    # ephemeral one, so the bot gets no gateway event for it.
    ephemeral: bool = False
    interaction_id: int | None = None
    message_type: int | None = None  # None: 0, or 19 for a reply; 20/23 for an interaction response

    @property
    def text(self) -> str:
        """Content plus embed text: bot text may live in either."""
        parts = [self.content]
        for e in self.embeds:
            parts += [e.get("title") or "", e.get("description") or ""]
            parts += [f"{f.get('name', '')} {f.get('value', '')}" for f in e.get("fields", [])]
            if e.get("footer"):
                parts.append(e["footer"].get("text") or "")
        return "\n".join(p for p in parts if p)
