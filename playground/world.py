"""The playground's world: one server, a few text channels, a voice channel, two people, and
each person's DM channel with the bot.

Its ids are fixed (not minted per start) because the bot keeps models, datasets and
database rows per server id in DATA_DIR: a model trained in the playground must still be
that server's model after a restart.  The DM channels' ids are fixed too, so the DMs in the
page's history (history.py) come back after a restart, in the same channels.
"""
from __future__ import annotations

from localdiscord.server import FakeDiscord
from localdiscord.state import (
    DM_CHANNEL, MANAGE_GUILD, MEMBER_PERMISSIONS, TEXT_CHANNEL, VOICE_CHANNEL, Channel, Guild, Role,
)

# Snowflake-shaped constants (late 2022): only their stability matters.
BOT_ID = 1_050_000_000_000_000_001
APPLICATION_ID = 1_050_000_000_000_000_002
YOU_ID = 1_050_000_000_000_000_010
MEMBER_ID = 1_050_000_000_000_000_011
GUILD_ID = 1_050_000_000_000_000_100
ADMIN_ROLE_ID = 1_050_000_000_000_000_101
BOT_ROLE_ID = 1_050_000_000_000_000_102
TEXT_CHANNELS = (("general", 1_050_000_000_000_000_110), ("training", 1_050_000_000_000_000_111),
                 ("random", 1_050_000_000_000_000_112))
VOICE_CHANNEL_ID = 1_050_000_000_000_000_120
YOU_DM_ID = 1_050_000_000_000_000_130  # "you" and the bot
MEMBER_DM_ID = 1_050_000_000_000_000_131  # "sam" and the bot

BOT_NAME = "ChatBot"
YOU_NAME = "you"
MEMBER_NAME = "sam"
GUILD_NAME = "Playground"


def build_world(fake: FakeDiscord) -> None:
    """Fill `fake` with the playground's world (see `FakeDiscord(world=...)`).

    "you" own the server and the application (so you are the bot's owner and a server
    admin); "sam" is a plain member, to try what the bot refuses to non-admins."""
    fake.bot = fake.add_user(BOT_NAME, bot=True, user_id=BOT_ID)
    fake.application_id = APPLICATION_ID
    fake.owner = fake.add_user(YOU_NAME, user_id=YOU_ID)
    fake.member = fake.add_user(MEMBER_NAME, user_id=MEMBER_ID)
    fake.team = []
    guild = Guild(GUILD_ID, GUILD_NAME, fake.owner.id)
    guild.roles[guild.id] = Role(guild.id, "@everyone", MEMBER_PERMISSIONS)
    guild.roles[ADMIN_ROLE_ID] = Role(ADMIN_ROLE_ID, "Admin", MEMBER_PERMISSIONS | MANAGE_GUILD, position=1)
    guild.roles[BOT_ROLE_ID] = Role(BOT_ROLE_ID, "Bot", MEMBER_PERMISSIONS, position=2)
    guild.members = {fake.bot.id: [BOT_ROLE_ID], fake.owner.id: [], fake.member.id: []}
    for name, channel_id in TEXT_CHANNELS:
        guild.channels[channel_id] = Channel(channel_id, name, TEXT_CHANNEL, guild_id=guild.id)
    guild.channels[VOICE_CHANNEL_ID] = Channel(VOICE_CHANNEL_ID, "Voice", VOICE_CHANNEL, guild_id=guild.id)
    fake.guilds[guild.id] = guild
    fake.channels.update(guild.channels)
    fake.guild = guild
    fake.general = guild.channels[TEXT_CHANNELS[0][1]]
    fake.voice = guild.channels[VOICE_CHANNEL_ID]
    # What `fake.dm_channel(person)` finds (the bot opening a DM, the page sending one).
    for person, dm_id in ((fake.owner, YOU_DM_ID), (fake.member, MEMBER_DM_ID)):
        fake.channels[dm_id] = Channel(dm_id, "", DM_CHANNEL, recipient=person)


def people(fake: FakeDiscord) -> list:
    """The people you can be on the page, owner first."""
    return [fake.owner, fake.member]
