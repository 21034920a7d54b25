"""Application commands as the local Discord server keeps them: per scope, validated like Discord.

Discord stores one list of commands per scope (global, or one guild) and only lets a user invoke
what is registered there, so a bot whose `tree.sync()` sent a malformed command, or never synced,
must fail in tests as it would in production.  This module is plain data (no HTTP): the routes in
`command_routes.py` fill it, `interaction_input.py` looks commands up in it, and tests read
`FakeDiscord.app_commands` to see what was registered.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from .state import snowflake

CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
COMMAND_TYPES = {CHAT_INPUT: "chat input", USER_COMMAND: "user", MESSAGE_COMMAND: "message"}
LIMITS = {CHAT_INPUT: 100, USER_COMMAND: 5, MESSAGE_COMMAND: 5}  # per scope

# Option types
SUBCOMMAND, SUBCOMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(1, 12)
CHOICE_TYPES = (STRING, INTEGER, NUMBER)
MAX_SAFE_INTEGER = 2**53

# Discord's rule for chat-input and option names: lowercase letters (any script), digits, - _ '
_NAME = re.compile(r"^[-_'\w]{1,32}$")
# The locales Discord translates commands into: the keys of name_localizations / description_localizations.
LOCALES = frozenset("id da de en-GB en-US es-ES es-419 fr hr it lt hu nl no pl pt-BR ro fi sv-SE vi tr cs el bg ru "
                    "uk hi th zh-CN ja zh-TW ko".split())


class InvalidCommands(Exception):
    """A registration Discord would refuse with 400 / 50035; `errors` is Discord's nested error tree."""

    def __init__(self, errors: dict):
        super().__init__(f"Invalid Form Body: {errors}")
        self.errors = errors


def _err(code: str, message: str) -> dict:
    return {"_errors": [{"code": code, "message": message}]}


def _check_name(name: Any, lowercase: bool) -> dict | None:
    if not isinstance(name, str) or not name:
        return _err("BASE_TYPE_REQUIRED", "This field is required")
    if lowercase:
        if not _NAME.match(name) or name != name.lower():
            return _err("APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    elif not 1 <= len(name) <= 32 or name != name.strip():
        return _err("APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    return None


def _check_description(description: Any) -> dict | None:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        return _err("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return None


def _check_localizations(errors: dict, owner: dict, lowercase: bool | None, nested_name_errors: bool) -> None:
    """`name_localizations` and `description_localizations` of a command, option or choice: a map from
    Discord's locales to values that follow the same rules as the name and description (null: none).

    `lowercase` is the name rule (True: chat input and options, False: menus, None: a choice's 1-100);
    Discord reports a command's bad localized name on the whole map, an option's per locale."""
    for key, check in (("name_localizations", "name"), ("description_localizations", "description")):
        values = owner.get(key)
        if values is None:
            continue
        if not isinstance(values, dict):
            errors[key] = _err("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        problems: dict = {}
        for locale, value in values.items():
            if locale not in LOCALES:
                problems[locale] = _err("BASE_TYPE_CHOICES", f"Value must be one of {sorted(LOCALES)}.")
            elif value is None:
                continue
            elif check == "description" or lowercase is None:
                if (problem := _check_description(value)):
                    problems[locale] = problem
            elif (problem := _check_name(value, lowercase=lowercase)):
                problems[locale] = problem
        if problems and check == "name" and not nested_name_errors and all(l in LOCALES for l in problems):
            errors[key] = _err("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        elif problems:
            errors[key] = problems


def _choice_value_ok(option_type: int, value: Any) -> bool:
    if option_type == STRING:
        return isinstance(value, str) and len(value) <= 100
    if option_type == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_SAFE_INTEGER
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_option(option: Any, depth: int) -> dict:
    """Errors of one option (and its nested options), keyed as Discord keys them."""
    if not isinstance(option, dict):
        return _err("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    errors: dict = {}
    otype = option.get("type")
    if otype not in range(1, 12):
        errors["type"] = _err("BASE_TYPE_CHOICES", f"Value must be one of (1..11): {otype!r}")
        return errors
    if (problem := _check_name(option.get("name"), lowercase=True)):
        errors["name"] = problem
    if (problem := _check_description(option.get("description"))):
        errors["description"] = problem
    _check_localizations(errors, option, lowercase=True, nested_name_errors=True)
    choices = option.get("choices")
    if choices:
        if otype not in CHOICE_TYPES:
            errors["choices"] = _err("APPLICATION_COMMAND_OPTION_CHOICES_INVALID",
                                     "Only string, integer and number options take choices")
        elif len(choices) > 25:
            errors["choices"] = _err("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        else:
            for i, choice in enumerate(choices):
                bad = (not isinstance(choice, dict) or _check_description(choice.get("name"))
                       or not _choice_value_ok(otype, choice.get("value")))
                if not bad:
                    _check_localizations(localized := {}, choice, lowercase=None, nested_name_errors=True)
                    bad = bool(localized)
                if bad:
                    errors.setdefault("choices", {})[str(i)] = _err("APPLICATION_COMMAND_OPTION_CHOICE_INVALID",
                                                                    f"Invalid choice: {choice!r}")
    if option.get("autocomplete"):
        if otype not in CHOICE_TYPES:
            errors["autocomplete"] = _err("APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_INVALID",
                                          "Autocomplete is only for string, integer and number options")
        elif choices:
            errors["autocomplete"] = _err("APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_AND_CHOICES",
                                          "Autocomplete cannot be set with choices")
    for key in ("min_value", "max_value"):
        if key in option and option[key] is not None and otype not in (INTEGER, NUMBER):
            errors[key] = _err("APPLICATION_COMMAND_OPTION_INVALID", f"{key} is only for integer and number options")
    for key in ("min_length", "max_length"):
        if key in option and option[key] is not None:
            if otype != STRING:
                errors[key] = _err("APPLICATION_COMMAND_OPTION_INVALID", f"{key} is only for string options")
            elif not isinstance(option[key], int) or not (key == "max_length") <= option[key] <= 6000:
                errors[key] = _err("NUMBER_TYPE_MAX", f"Must be between {int(key == 'max_length')} and 6000")
    if option.get("channel_types") and otype != CHANNEL:
        errors["channel_types"] = _err("APPLICATION_COMMAND_OPTION_INVALID", "channel_types is only for channel options")
    nested = option.get("options") or []
    if nested and otype not in (SUBCOMMAND, SUBCOMMAND_GROUP):
        errors["options"] = _err("APPLICATION_COMMAND_OPTION_INVALID", "Only subcommands and groups have options")
    elif otype == SUBCOMMAND_GROUP and (depth > 0 or any(o.get("type") != SUBCOMMAND for o in nested
                                                         if isinstance(o, dict))):
        errors["options"] = _err("APPLICATION_COMMAND_OPTION_INVALID", "A group holds subcommands only, at top level")
    elif otype == SUBCOMMAND and any(isinstance(o, dict) and o.get("type") in (SUBCOMMAND, SUBCOMMAND_GROUP)
                                     for o in nested):
        errors["options"] = _err("APPLICATION_COMMAND_OPTION_INVALID", "A subcommand cannot hold subcommands")
    elif nested:
        if (problem := _check_options(nested, depth + 1)):
            errors["options"] = problem
    return errors


def _check_options(options: Any, depth: int = 0) -> dict:
    if not isinstance(options, list):
        return _err("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(options) > 25:
        return _err("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    errors: dict = {}
    for i, option in enumerate(options):
        if (problem := _check_option(option, depth)):
            errors[str(i)] = problem
    if errors:
        return errors
    names = [o["name"] for o in options]
    if len(set(names)) != len(names):
        return _err("APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option names must be unique")
    kinds = {o["type"] in (SUBCOMMAND, SUBCOMMAND_GROUP) for o in options}
    if len(kinds) > 1:
        return _err("APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Subcommands and groups cannot be mixed with other options")
    seen_optional = False
    for i, option in enumerate(options):
        if option.get("required"):
            if seen_optional:
                return {str(i): {"required": _err("APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                                  "Required options must be placed before non-required options")}}
        elif option["type"] not in (SUBCOMMAND, SUBCOMMAND_GROUP):
            seen_optional = True
    return {}


def check_command(command: Any) -> dict:
    """Discord's validation of one application command; {} when it is fine."""
    if not isinstance(command, dict):
        return _err("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    errors: dict = {}
    ctype = command.get("type", CHAT_INPUT)
    if ctype not in COMMAND_TYPES:
        return {"type": _err("BASE_TYPE_CHOICES", f"Value must be one of {set(COMMAND_TYPES)}: {ctype!r}")}
    if (problem := _check_name(command.get("name"), lowercase=ctype == CHAT_INPUT)):
        errors["name"] = problem
    _check_localizations(errors, command, lowercase=ctype == CHAT_INPUT, nested_name_errors=False)
    if ctype == CHAT_INPUT:
        if (problem := _check_description(command.get("description"))):
            errors["description"] = problem
        if (problem := _check_options(command.get("options") or [])):
            errors["options"] = problem
    else:
        if command.get("description"):
            errors["description"] = _err("APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                                         "Context menu commands cannot have a description")
        if command.get("options"):
            errors["options"] = _err("APPLICATION_COMMAND_CONTEXT_MENU_OPTIONS",
                                     "Context menu commands cannot have options")
    permissions = command.get("default_member_permissions")
    if permissions is not None and not str(permissions).isdigit():
        errors["default_member_permissions"] = _err("NUMBER_TYPE_COERCE", f"Value {permissions!r} is not snowflake.")
    contexts = command.get("contexts")
    if contexts is not None and (not isinstance(contexts, list) or any(c not in (0, 1, 2) for c in contexts)):
        errors["contexts"] = _err("BASE_TYPE_CHOICES", "Value must be one of (0, 1, 2).")
    installs = command.get("integration_types")
    if installs is not None and (not isinstance(installs, list) or any(c not in (0, 1) for c in installs)):
        errors["integration_types"] = _err("BASE_TYPE_CHOICES", "Value must be one of (0, 1).")
    return errors


class CommandRegistry:
    """The application's commands per scope: None (global) or a guild id.

    `scopes[None]` / `scopes[guild_id]` hold the stored commands as Discord answers them (ids,
    `application_id`, `version`, `guild_id` for guild ones); `syncs` records each bulk overwrite as
    (scope, [names]) so a test can tell `!sync clear` (an empty list) from no sync at all."""

    def __init__(self, application_id: int):
        self.application_id = application_id
        self.scopes: dict[int | None, list[dict]] = {}
        self.syncs: list[tuple[int | None, list[str]]] = []

    def list(self, guild_id: int | None = None) -> list[dict]:
        return [copy.deepcopy(c) for c in self.scopes.get(guild_id, [])]

    def names(self, guild_id: int | None = None, type: int | None = None) -> list[str]:
        return [c["name"] for c in self.scopes.get(guild_id, []) if type is None or c["type"] == type]

    def find(self, name: str, type: int, guild_id: int | None) -> dict | None:
        """The command a user in `guild_id` (None: a DM) can pick: the guild's own first, then global."""
        for scope in ([guild_id] if guild_id is not None else []) + [None]:
            for command in self.scopes.get(scope, []):
                if command["name"] == name and command["type"] == type:
                    return command
        return None

    def get(self, guild_id: int | None, command_id: int) -> dict | None:
        return next((c for c in self.scopes.get(guild_id, []) if int(c["id"]) == command_id), None)

    def _stored(self, guild_id: int | None, command: dict, previous: dict | None) -> dict:
        ctype = command.get("type", CHAT_INPUT)
        permissions = command.get("default_member_permissions")
        stored = {
            "id": previous["id"] if previous else str(snowflake()),
            "application_id": str(self.application_id),
            "version": str(snowflake()),
            "type": ctype,
            "name": command["name"],
            "name_localizations": command.get("name_localizations"),
            "description": command.get("description") or "",
            "description_localizations": command.get("description_localizations"),
            "default_member_permissions": None if permissions is None else str(permissions),
            "dm_permission": command.get("dm_permission", True),
            "contexts": command.get("contexts"),
            "integration_types": command.get("integration_types") or [0],
            "nsfw": bool(command.get("nsfw", False)),
        }
        if command.get("options"):
            stored["options"] = copy.deepcopy(command["options"])
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored

    def overwrite(self, guild_id: int | None, commands: Any) -> list[dict]:
        """Bulk overwrite (PUT): all or nothing, keeping the id of a command whose name and type stay."""
        if not isinstance(commands, list):
            raise InvalidCommands(_err("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"))
        errors = {str(i): e for i, command in enumerate(commands) if (e := check_command(command))}
        if errors:
            raise InvalidCommands(errors)
        keys = [(c["name"], c.get("type", CHAT_INPUT)) for c in commands]
        if len(set(keys)) != len(keys):
            raise InvalidCommands(_err("APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"))
        for ctype, limit in LIMITS.items():
            if sum(1 for _, t in keys if t == ctype) > limit:
                raise InvalidCommands(_err("APPLICATION_COMMANDS_TOO_MANY",
                                           f"At most {limit} {COMMAND_TYPES[ctype]} commands per scope"))
        old = {(c["name"], c["type"]): c for c in self.scopes.get(guild_id, [])}
        stored = [self._stored(guild_id, c, old.get(key)) for c, key in zip(commands, keys)]
        self.scopes[guild_id] = stored
        self.syncs.append((guild_id, [c["name"] for c in stored]))
        return copy.deepcopy(stored)

    def upsert(self, guild_id: int | None, command: Any) -> tuple[dict, bool]:
        """Create one (POST); a command with the same name and type is replaced. Returns (it, created)."""
        if (errors := check_command(command)):
            raise InvalidCommands(errors)
        commands = self.scopes.setdefault(guild_id, [])
        key = (command["name"], command.get("type", CHAT_INPUT))
        for i, existing in enumerate(commands):
            if (existing["name"], existing["type"]) == key:
                commands[i] = self._stored(guild_id, command, existing)
                return copy.deepcopy(commands[i]), False
        if sum(1 for c in commands if c["type"] == key[1]) >= LIMITS[key[1]]:
            raise InvalidCommands(_err("APPLICATION_COMMANDS_TOO_MANY", "Maximum number of application commands reached"))
        commands.append(self._stored(guild_id, command, None))
        return copy.deepcopy(commands[-1]), True

    def edit(self, guild_id: int | None, command_id: int, fields: dict) -> dict | None:
        """PATCH: change some fields of one command; None if there is no such command."""
        existing = self.get(guild_id, command_id)
        if existing is None:
            return None
        merged = {**existing, **fields}
        if (errors := check_command(merged)):
            raise InvalidCommands(errors)
        commands = self.scopes[guild_id]
        commands[commands.index(existing)] = self._stored(guild_id, merged, existing)
        return self.get(guild_id, command_id)

    def delete(self, guild_id: int | None, command_id: int) -> bool:
        existing = self.get(guild_id, command_id)
        if existing is None:
            return False
        self.scopes[guild_id].remove(existing)
        return True
