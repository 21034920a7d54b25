"""What the Discord client lets a user send, turned into the wire data it sends.

The client offers a command only where it is registered and visible to the user (guild or
global, `contexts`, `dm_permission`, `default_member_permissions`), checks every option against
its registration (type, length, range, choices, required) and resolves users, roles, channels and
attachments into the `resolved` map; a modal is submitted with its fields checked.  Whatever the
client would refuse raises `InteractionRefused` (or `CommandUnavailable`) here, before anything
reaches the bot; interaction_server.py then dispatches what passed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import appcommands as ac
from .appcommands import CommandRegistry
from .interactions import CommandUnavailable, Interaction, InteractionRefused
from .state import ALL_PERMISSIONS, DM_CHANNEL, Attachment, Channel, Guild, Role, User

if TYPE_CHECKING:
    from .server import FakeDiscord


class ClientInput:
    """The Discord client's side of an interaction: which command it offers, what options it sends."""

    def __init__(self, fake: "FakeDiscord", commands: CommandRegistry):
        self.fake = fake
        self.commands = commands

    def guild(self, channel: Channel) -> Guild | None:
        return self.fake.guilds[channel.guild_id] if channel.guild_id is not None else None

    def _check_place(self, user: User, channel: Channel) -> Guild | None:
        guild = self.guild(channel)
        if guild is None:
            if channel.type != DM_CHANNEL or channel.recipient is not user:
                raise InteractionRefused(f"{user.username} cannot use a command in someone else's DM")
        elif user.id not in guild.members:
            raise InteractionRefused(f"{user.username} is not a member of {guild.name}")
        return guild

    def command(self, user: User, name: str, ctype: int, channel: Channel) -> dict:
        """The registered command the Discord client would offer `user` in `channel`."""
        guild = self._check_place(user, channel)
        command = self.commands.find(name, ctype, guild.id if guild else None)
        where = guild.name if guild else "a DM"
        if command is None:
            known = self.commands.names(guild.id if guild else None, ctype) + self.commands.names(None, ctype)
            raise CommandUnavailable(f"no {ac.COMMAND_TYPES[ctype]} command {name!r} is registered for {where} "
                                     f"(registered there or globally: {sorted(set(known))}); "
                                     f"did the bot sync its command tree?")
        contexts = command.get("contexts") if "guild_id" not in command else None  # global commands only
        context = 0 if guild else 1
        if contexts is not None and context not in contexts:
            raise CommandUnavailable(f"{name!r} is not offered in {where} (contexts {contexts})")
        if guild is None and contexts is None and not command.get("dm_permission", True):
            raise CommandUnavailable(f"{name!r} is not offered in DMs (dm_permission false)")
        required = command.get("default_member_permissions")
        if guild is not None and required is not None:
            have = guild.permissions(user.id)
            if have != ALL_PERMISSIONS and (int(required) == 0 or have & int(required) != int(required)):
                raise CommandUnavailable(f"{name!r} is hidden from {user.username} in {where}: "
                                         f"default_member_permissions {required}, they have {have}")
        return command

    def member_payload(self, guild: Guild, user: User, with_user: bool = True) -> dict:
        member = guild.member_payload(user)
        member["permissions"] = str(guild.permissions(user.id))
        member.update(avatar=None, pending=False, communication_disabled_until=None, premium_since=None)
        if not with_user:
            member.pop("user")
        return member

    # -- options ----------------------------------------------------------------------------------
    def option_value(self, spec: dict, value: Any, resolved: dict, channel: Channel) -> Any:
        """The wire value of one option, as the Discord client would send it (resolving objects)."""
        otype, name = spec["type"], spec["name"]

        def wrong(expected: str) -> InteractionRefused:
            return InteractionRefused(f"option {name!r} takes {expected}, not {value!r}")

        if otype == ac.STRING:
            if not isinstance(value, str):
                raise wrong("a string")
            lo, hi = spec.get("min_length") or 0, spec.get("max_length") or 6000
            if not lo <= len(value) <= hi:
                raise InteractionRefused(f"option {name!r} must be {lo}..{hi} characters, got {len(value)}")
        elif otype == ac.INTEGER:
            if not isinstance(value, int) or isinstance(value, bool):
                raise wrong("an integer")
        elif otype == ac.NUMBER:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise wrong("a number")
        elif otype == ac.BOOLEAN:
            if not isinstance(value, bool):
                raise wrong("a boolean")
        if otype in (ac.INTEGER, ac.NUMBER):
            lo, hi = spec.get("min_value"), spec.get("max_value")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise InteractionRefused(f"option {name!r} must be within {lo}..{hi}, got {value}")
        if spec.get("choices") and value not in [c["value"] for c in spec["choices"]]:
            raise InteractionRefused(f"option {name!r} must be one of {[c['value'] for c in spec['choices']]}")
        if otype in (ac.STRING, ac.INTEGER, ac.NUMBER, ac.BOOLEAN):
            return value
        guild = self.guild(channel)
        if otype in (ac.USER, ac.MENTIONABLE) and isinstance(value, User):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            if guild is not None and value.id in guild.members:
                resolved.setdefault("members", {})[str(value.id)] = self.member_payload(guild, value, with_user=False)
            return str(value.id)
        if otype in (ac.ROLE, ac.MENTIONABLE) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return str(value.id)
        if otype == ac.CHANNEL and isinstance(value, Channel):
            data = value.payload()
            if guild is not None:
                data["permissions"] = str(guild.permissions(self.fake.bot.id))
            resolved.setdefault("channels", {})[str(value.id)] = data
            return str(value.id)
        if otype == ac.ATTACHMENT:
            if isinstance(value, tuple) and len(value) == 3:
                filename, data, content_type = value
                value = self.fake._store_attachment(channel, filename, data, content_type)
            if not isinstance(value, Attachment):
                raise wrong("(filename, bytes, content_type) or an Attachment")
            resolved.setdefault("attachments", {})[str(value.id)] = {**value.payload(), "ephemeral": True}
            return str(value.id)
        raise wrong({ac.USER: "a User", ac.ROLE: "a Role", ac.CHANNEL: "a Channel",
                     ac.MENTIONABLE: "a User or Role"}.get(otype, "something else"))

    def options(self, command: dict, given: dict[str, Any], subcommand: str | None, channel: Channel,
                 focused: tuple[str, str] | None = None) -> tuple[list[dict], dict]:
        specs = command.get("options") or []
        path = subcommand.split() if subcommand else []
        wrappers = []
        for part in path:
            spec = next((o for o in specs if o["name"] == part and o["type"] in (ac.SUBCOMMAND, ac.SUBCOMMAND_GROUP)),
                        None)
            if spec is None:
                raise InteractionRefused(f"/{command['name']} has no subcommand {part!r}")
            wrappers.append(spec)
            specs = spec.get("options") or []
        if any(o["type"] in (ac.SUBCOMMAND, ac.SUBCOMMAND_GROUP) for o in specs):
            raise InteractionRefused(f"/{' '.join([command['name'], *path])} needs a subcommand: "
                                 f"{[o['name'] for o in specs]}")
        names = {o["name"] for o in specs}
        unknown = set(given) - names - ({focused[0]} if focused else set())
        if unknown or (focused and focused[0] not in names):
            raise InteractionRefused(f"/{command['name']} has no option {sorted(unknown or {focused[0]})}; "
                                 f"its options: {sorted(names)}")
        resolved: dict = {}
        options = []
        for spec in specs:
            name = spec["name"]
            if focused and name == focused[0]:
                if not spec.get("autocomplete"):
                    raise InteractionRefused(f"option {name!r} of /{command['name']} was not registered with "
                                         f"autocomplete, so Discord sends no autocomplete for it")
                options.append({"name": name, "type": spec["type"], "value": focused[1], "focused": True})
            elif given.get(name) is not None:
                options.append({"name": name, "type": spec["type"],
                                "value": self.option_value(spec, given[name], resolved, channel)})
            elif spec.get("required") and focused is None:
                raise InteractionRefused(f"/{command['name']} needs option {name!r} (required)")
        for spec in reversed(wrappers):
            options = [{"name": spec["name"], "type": spec["type"], "options": options}]
        return options, resolved

    def command_data(self, command: dict, **extra: Any) -> dict:
        data = {"id": command["id"], "name": command["name"], "type": command["type"], **extra}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    def chat_input_data(self, user: User, name: str, given: dict | None, subcommand: str | None,
                        channel: Channel, focused: tuple[str, str] | None = None) -> dict:
        """The `data` of `/name` with these options (or, `focused`, of an autocomplete on one)."""
        command = self.command(user, name, ac.CHAT_INPUT, channel)
        opts, resolved = self.options(command, given or {}, subcommand, channel, focused=focused)
        data = self.command_data(command, options=opts)
        if resolved:
            data["resolved"] = resolved
        return data

    def modal_submission(self, user: User, interaction: Interaction, values: dict[str, Any]) -> list[dict]:
        """The `components` of the submitted modal that the bot answered `interaction` with."""
        modal = interaction.modal
        if modal is None:
            raise InteractionRefused(f"{interaction.describe()} was not answered with a modal "
                                     f"({interaction._state()})")
        if user.id != interaction.user.id:
            raise InteractionRefused("only the user who opened a modal can submit it")
        if interaction.modal_submitted:
            raise InteractionRefused("this modal was already submitted (Discord closes it)")
        if not isinstance(values, dict):
            raise InteractionRefused("a modal's values are {custom_id: text}")
        inputs: dict[str, dict] = {}

        def submitted(component: dict) -> dict:
            ctype = component.get("type")
            if ctype == 1:
                return {"type": 1, "id": component.get("id", 0),
                        "components": [submitted(c) for c in component.get("components", [])]}
            if ctype == 18:
                return {"type": 18, "id": component.get("id", 0), "component": submitted(component["component"])}
            out = {"type": ctype, "id": component.get("id", 0)}
            if "custom_id" in component:
                inputs[component["custom_id"]] = component
                out["custom_id"] = component["custom_id"]
                given = values.get(component["custom_id"])
                if ctype == 4:
                    text = "" if given is None else str(given)
                    lo, hi = component.get("min_length") or 0, component.get("max_length") or 4000
                    if component.get("required", True) and not text:
                        raise InteractionRefused(f"modal field {component['custom_id']!r} is required")
                    if text and not lo <= len(text) <= hi:
                        raise InteractionRefused(f"modal field {component['custom_id']!r} takes {lo}..{hi} characters")
                    out["value"] = text
                else:
                    out["values"] = list(given or [])
            return out

        components = [submitted(c) for c in modal.get("components", [])]
        unknown = set(values) - set(inputs)
        if unknown:
            raise InteractionRefused(f"the modal has no field {sorted(unknown)}; its fields: {sorted(inputs)}")
        return components
