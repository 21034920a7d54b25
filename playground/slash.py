"""`/name option:value ...` as typed in the page's message box, read against the commands the
bot registered (the local server's registry), into what `FakeDiscord.slash` takes.

Discord's own client has a form per option; a text box is quicker to type and to test:
- `/train label:hello world` (a value runs up to the next `known_option:`);
- with one text option, `name:` may be left out (`/feedback nice bot`);
- subcommands come first as words (`/model info`), as Discord shows them;
- a file attached to the message fills the command's first attachment option.
Values are converted by the option's type; users, roles and channels are given by name.
A command's or option's localized name (what a Russian client shows: `/обучить метка:…`) is
taken too, and sent under its own name, as Discord's client does.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from localdiscord import appcommands as ac


MAX_NUMBER = 2**53


class SlashSyntaxError(ValueError):
    """What was typed is not a use of a registered command; the message says what is wrong."""


@dataclass
class SlashUse:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    subcommand: str | None = None


def parse(text: str, commands: Iterable[dict], *, attachment: tuple[str, bytes, str | None] | None = None,
          users: Iterable = (), roles: Iterable = (), channels: Iterable = ()) -> SlashUse:
    """Read `text` (starting with "/") against `commands` (registered chat-input commands)."""
    text = text.strip()
    if not text.startswith("/") or len(text) < 2:
        raise SlashSyntaxError("a slash command starts with / and a name, e.g. /hi")
    head, _, rest = text[1:].partition(" ")
    name = head.lower()
    command = next((c for c in commands if _named(c, name) and c.get("type", 1) == ac.CHAT_INPUT), None)
    if command is None:
        known = sorted(c["name"] for c in commands if c.get("type", 1) == ac.CHAT_INPUT)
        raise SlashSyntaxError(f"/{name} is not a registered command; try one of: {', '.join('/' + k for k in known)}")
    name = command["name"]
    specs = command.get("options") or []
    path: list[str] = []
    rest = rest.strip()
    while any(o["type"] in (ac.SUBCOMMAND, ac.SUBCOMMAND_GROUP) for o in specs):
        word, _, remainder = rest.partition(" ")
        spec = next((o for o in specs if _named(o, word.lower())
                     and o["type"] in (ac.SUBCOMMAND, ac.SUBCOMMAND_GROUP)), None)
        if spec is None:
            subs = [o["name"] for o in specs if o["type"] in (ac.SUBCOMMAND, ac.SUBCOMMAND_GROUP)]
            raise SlashSyntaxError(f"/{' '.join([name, *path])} needs one of: {', '.join(subs)}")
        path.append(spec["name"])
        specs = spec.get("options") or []
        rest = remainder.strip()
    raw = _split(rest, specs)
    options: dict[str, Any] = {}
    by_name = {o["name"]: o for o in specs}
    for key, value in raw.items():
        options[key] = _convert(by_name[key], value, users, roles, channels)
    attachment_specs = [o for o in specs if o["type"] == ac.ATTACHMENT]
    if attachment is not None:
        if not attachment_specs:
            raise SlashSyntaxError(f"/{name} takes no file; send the file as a message instead")
        options[attachment_specs[0]["name"]] = attachment
    missing = [o["name"] for o in specs if o.get("required") and o["name"] not in options]
    if missing:
        hint = " (attach a file first)" if any(by_name[m]["type"] == ac.ATTACHMENT for m in missing) else ""
        raise SlashSyntaxError(f"/{name} needs {', '.join(m + ':' for m in missing)}{hint}")
    return SlashUse(name, options, " ".join(path) or None)


def _named(item: dict, typed: str) -> bool:
    """Whether `typed` is the command's (or option's) name, or one of its localized names."""
    return item.get("name") == typed or typed in (item.get("name_localizations") or {}).values()


def _split(rest: str, specs: list[dict]) -> dict[str, str]:
    """`a:1 b:two words` -> {"a": "1", "b": "two words"}, for the options in `specs` only (by any of their names)."""
    names = [o["name"] for o in specs if o["type"] != ac.ATTACHMENT]
    if not rest:
        return {}
    canonical = {n: n for n in names}
    for o in specs:
        if o["type"] != ac.ATTACHMENT:
            canonical.update({local: o["name"] for local in (o.get("name_localizations") or {}).values() if local})
    spelled = sorted(canonical, key=len, reverse=True)  # the longest first: "name" before "na"
    pattern = re.compile(r"(?:^|\s)(" + "|".join(re.escape(n) for n in spelled) + r"):") if names else None
    marks = list(pattern.finditer(rest)) if pattern else []
    if not marks or marks[0].start() > 0 and rest[:marks[0].start()].strip():
        text_options = [o["name"] for o in specs if o["type"] == ac.STRING]
        if len(text_options) == 1 and not marks:
            return {text_options[0]: rest}
        raise SlashSyntaxError(f"write options as name:value; this command takes "
                               f"{', '.join(n + ':' for n in names) or 'no options'}")
    values = {}
    for mark, following in zip(marks, marks[1:] + [None]):
        end = following.start() if following else len(rest)
        values[canonical[mark.group(1)]] = rest[mark.end():end].strip()
    return values


def _convert(spec: dict, value: str, users: Iterable, roles: Iterable, channels: Iterable) -> Any:
    otype, name = spec["type"], spec["name"]
    if otype in (ac.INTEGER, ac.NUMBER):
        try:
            number = int(value) if otype == ac.INTEGER else float(value)
        except ValueError:
            raise SlashSyntaxError(f"{name}: must be a number, not {value[:40]!r}") from None
        if not math.isfinite(number) or abs(number) > MAX_NUMBER:  # Discord's range for number options
            raise SlashSyntaxError(f"{name}: must be a number between -2^53 and 2^53")
        return number
    if otype == ac.BOOLEAN:
        if value.lower() in ("true", "yes", "1", "on"):
            return True
        if value.lower() in ("false", "no", "0", "off"):
            return False
        raise SlashSyntaxError(f"{name}: must be true or false, not {value!r}")
    lookup = {ac.USER: (users, "username"), ac.MENTIONABLE: (users, "username"), ac.ROLE: (roles, "name"),
              ac.CHANNEL: (channels, "name")}
    if otype in lookup:
        pool, attr = lookup[otype]
        wanted = value.lstrip("@#").lower()
        found = next((x for x in pool if getattr(x, attr).lower() == wanted), None)
        if found is None:
            raise SlashSyntaxError(f"{name}: no {attr.replace('username', 'user')} called {value!r}")
        return found
    if otype == ac.STRING and spec.get("choices"):
        for choice in spec["choices"]:
            if value in (choice["value"], choice["name"]):
                return choice["value"]
    return value


def describe(commands: Iterable[dict]) -> list[dict]:
    """What the page suggests while typing: each command with its option names and types."""
    out = []
    for c in sorted(commands, key=lambda c: c["name"]):
        if c.get("type", 1) != ac.CHAT_INPUT:
            continue
        out.append({"name": c["name"], "description": c.get("description", ""),
                    "options": [_describe_option(o) for o in c.get("options") or []]})
    return out


def _describe_option(o: dict) -> dict:
    kinds = {ac.SUBCOMMAND: "subcommand", ac.SUBCOMMAND_GROUP: "group", ac.STRING: "text", ac.INTEGER: "integer",
             ac.BOOLEAN: "true/false", ac.USER: "user", ac.CHANNEL: "channel", ac.ROLE: "role",
             ac.MENTIONABLE: "user", ac.NUMBER: "number", ac.ATTACHMENT: "file"}
    return {"name": o["name"], "kind": kinds.get(o["type"], "?"), "required": bool(o.get("required")),
            "description": o.get("description", ""), "autocomplete": bool(o.get("autocomplete")),
            "options": [_describe_option(s) for s in o.get("options") or []]}
