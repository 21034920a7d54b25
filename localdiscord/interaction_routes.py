"""The bot's answers to interactions: the callback route and the webhook routes.

`POST /interactions/{id}/{token}/callback` takes the one response Discord allows (a message, a
deferral, an update, autocomplete choices or a modal), refusing a second one (40060), a late one
(10062) and one of the wrong type or shape; the webhook routes under
`/webhooks/{app}/{token}` send follow-ups and get, edit or delete the original response and the
follow-ups.  The messages they make are stored and delivered as any other (ephemeral ones are
never delivered) and carry the interaction metadata Discord adds (`decorate`).
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import appcommands as ac
from .interactions import (
    ALLOWED_CALLBACKS, APPLICATION_COMMAND, AUTOCOMPLETE_RESULT, CHANNEL_MESSAGE, DEFERRED_MESSAGE,
    DEFERRED_UPDATE, MODAL, SETTABLE_FLAGS, UPDATE_MESSAGE, Interaction,
)
from .responses import error_response, json_response, read_body
from .rest import check_message
from .state import FLAG_EPHEMERAL, FLAG_LOADING, Channel, Message, snowflake

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger("fakediscord")


def _unknown_interaction() -> web.Response:
    return error_response(404, 10062, "Unknown interaction")


def _unknown_webhook() -> web.Response:
    return error_response(404, 10015, "Unknown Webhook")


def _unknown_message() -> web.Response:
    return error_response(404, 10008, "Unknown Message")


def _invalid(message: str) -> web.Response:
    return error_response(400, 50035, "Invalid Form Body", {"data": {"_errors": [{"code": "INVALID", "message": message}]}})


class InteractionRoutes:
    """The routes the bot answers interactions on, over the interactions an InteractionServer keeps."""

    def __init__(self, fake: "FakeDiscord", records: dict[int, Interaction], by_token: dict[str, Interaction]):
        self.fake = fake
        self.records = records  # shared with the InteractionServer, which adds to them
        self.by_token = by_token

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/v10/interactions/{interaction}/{token}/callback", self._callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_get("/api/v10/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message)
        r.add_patch("/api/v10/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message)
        r.add_delete("/api/v10/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message)

    # -- messages made by interactions ----------------------------------------------------------
    def metadata(self, record: Interaction, msg: Message) -> dict:
        """`interaction_metadata` of a message made by `record` (as message payloads carry it)."""
        data: dict[str, Any] = {
            "id": str(record.id), "type": record.type, "user": record.user.payload(),
            "authorizing_integration_owners": record.payload.get("authorizing_integration_owners", {}),
        }
        if record.type == APPLICATION_COMMAND:
            data["name"] = record.name
            data["command_type"] = record.command_type
            target = record.payload.get("data", {}).get("target_id")
            if target and record.command_type == ac.MESSAGE_COMMAND:
                data["target_message_id"] = target
            elif target:
                data["target_user"] = self.fake.users[int(target)].payload()
        if record.original is not None and msg is not record.original:
            data["original_response_message_id"] = str(record.original.id)
        if record.parent is not None:
            data["triggering_interaction_metadata"] = self.metadata(record.parent, msg)
        return data

    def decorate(self, msg: Message, data: dict) -> None:
        """Add what Discord adds to a message an interaction made (called by message_payload)."""
        record = self.records.get(msg.interaction_id or 0)
        data["webhook_id"] = str(self.fake.application_id)
        data["application_id"] = str(self.fake.application_id)
        if record is not None:
            data["interaction_metadata"] = self.metadata(record, msg)
            data["interaction"] = {"id": str(record.id), "type": record.type, "name": record.name,
                                   "user": record.user.payload()}

    async def _create(self, record: Interaction, body: dict, files: list, *, flags: int, followup: bool) -> Message:
        fake = self.fake
        ephemeral = bool(flags & FLAG_EPHEMERAL)
        msg = Message(snowflake(), record.channel, fake.bot, body.get("content") or "",
                      embeds=body.get("embeds") or [])
        msg.flags = flags
        msg.ephemeral = ephemeral
        msg.interaction_id = record.id
        msg.message_type = 0 if followup else (20 if record.command_type == ac.CHAT_INPUT else 23)
        msg.mentions = fake._mentions(msg.content)
        msg.attachments = [fake._store_attachment(record.channel, n, d, c) for n, d, c in files]
        fake.add_message(msg)
        await fake._record_event("create", msg)
        if not ephemeral:
            await fake._deliver("MESSAGE_CREATE", msg)
        return msg

    async def _update(self, msg: Message, body: dict, files: list) -> None:
        fake = self.fake
        msg.edits.append(msg.text)
        if "content" in body:
            msg.content = body["content"] or ""
            msg.mentions = fake._mentions(msg.content)
        if "embeds" in body:
            msg.embeds = body["embeds"] or []
        if "attachments" in body and body["attachments"] is not None:
            keep = {str(a.get("id")) for a in body["attachments"]}
            msg.attachments = [a for a in msg.attachments if str(a.id) in keep]
        msg.attachments += [fake._store_attachment(msg.channel, n, d, c) for n, d, c in files]
        msg.flags &= ~FLAG_LOADING
        msg.edited = True
        await fake._record_event("edit", msg)
        if not msg.ephemeral:
            await fake._deliver("MESSAGE_UPDATE", msg)

    def _check_content(self, channel: Channel, body: dict, files: list, *, creating: bool) -> web.Response | None:
        if (problem := check_message(self.fake, channel, body, files)):
            return problem
        if creating and not (body.get("content") or body.get("embeds") or files or body.get("components")):
            return error_response(400, 50006, "Cannot send an empty message")
        return None

    # -- the callback -----------------------------------------------------------------------------
    async def _callback(self, request: web.Request) -> web.Response:
        record = self.records.get(int(request.match_info["interaction"]))
        if record is None or record.token != request.match_info["token"]:
            return _unknown_interaction()
        body, files = await read_body(request)
        ctype = body.get("type")
        data = body.get("data") or {}
        if record.expired:
            record.late_callbacks.append(ctype)
            await self.fake.notify()
            log.warning("fake discord: %s answered after it expired", record.describe())
            return _unknown_interaction()
        if record.callbacks:
            record.rejected.append((ctype, 400, 40060))
            await self.fake.notify()
            return error_response(400, 40060, "Interaction has already been acknowledged.")
        problem = self._check_callback(record, ctype, data, files)
        if problem is not None:
            record.rejected.append((ctype, problem.status, json.loads(problem.body)["code"]))
            await self.fake.notify()
            return problem
        if record._timer is not None:
            record._timer.cancel()
        record.callbacks.append(ctype)
        flags = int(data.get("flags") or 0) & SETTABLE_FLAGS
        message: Message | None = None
        if ctype == CHANNEL_MESSAGE:
            record.ephemeral = bool(flags & FLAG_EPHEMERAL)
            message = record.original = await self._create(record, data, files, flags=flags, followup=False)
        elif ctype == DEFERRED_MESSAGE:
            record.deferred = True
            record.ephemeral = bool(flags & FLAG_EPHEMERAL)
            record.original = await self._create(record, {}, [], flags=(flags & FLAG_EPHEMERAL) | FLAG_LOADING,
                                                 followup=False)
        elif ctype == DEFERRED_UPDATE:
            record.deferred = True
        elif ctype == UPDATE_MESSAGE and record.message is not None:  # checked above
            message = record.message
            await self._update(message, data, files)
        elif ctype == AUTOCOMPLETE_RESULT:
            record.choices = list(data.get("choices") or [])
        elif ctype == MODAL:
            record.modal = data
        await self.fake.notify()
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        answer: dict[str, Any] = {"interaction": {"id": str(record.id), "type": record.type}}
        resource: dict[str, Any] = {"type": ctype}
        if record.original is not None and ctype in (CHANNEL_MESSAGE, DEFERRED_MESSAGE):
            answer["interaction"].update(response_message_id=str(record.original.id),
                                         response_message_loading=ctype == DEFERRED_MESSAGE,
                                         response_message_ephemeral=record.ephemeral)
        if message is not None:
            resource["message"] = self.fake.message_payload(message)
        answer["resource"] = resource
        return json_response(answer)

    def _check_callback(self, record: Interaction, ctype: Any, data: dict, files: list) -> web.Response | None:
        if ctype not in ALLOWED_CALLBACKS.get(record.type, set()):
            return _invalid(f"callback type {ctype!r} is not valid for interaction type {record.type}")
        if ctype == CHANNEL_MESSAGE:
            return self._check_content(record.channel, data, files, creating=True)
        if ctype == UPDATE_MESSAGE:
            if record.message is None:
                return _invalid("this interaction has no message to update")
            return self._check_content(record.channel, data, files, creating=False)
        if ctype == AUTOCOMPLETE_RESULT:
            choices = data.get("choices")
            if not isinstance(choices, list) or len(choices) > 25:
                return _invalid("choices: a list of at most 25")
            if any(not isinstance(c, dict) or not 1 <= len(str(c.get("name", ""))) <= 100 or "value" not in c
                   for c in choices):
                return _invalid("each choice needs a name of 1..100 characters and a value")
        if ctype == MODAL:
            components = data.get("components")
            if not 1 <= len(str(data.get("custom_id") or "")) <= 100:
                return _invalid("modal custom_id: 1..100 characters")
            if not 1 <= len(str(data.get("title") or "")) <= 45:
                return _invalid("modal title: 1..45 characters")
            if not isinstance(components, list) or not 1 <= len(components) <= 5:
                return _invalid("modal components: 1..5")
        return None

    # -- webhook routes: original response and follow-ups ------------------------------------------
    def _webhook_record(self, request: web.Request) -> Interaction | None:
        record = self.by_token.get(request.match_info["token"])
        if (record is None or int(request.match_info["app"]) != self.fake.application_id
                or (record.expired and not record.callbacks)):
            return None
        return record

    def _webhook_message(self, record: Interaction, message_id: str) -> Message | None:
        if message_id == "@original":
            msg = record.original
        else:
            msg = next((m for m in [record.original, *record.followups]
                        if m is not None and str(m.id) == message_id), None)
        return None if msg is None or msg.deleted else msg

    async def _followup(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        if record is None or not record.callbacks or record.response_type == AUTOCOMPLETE_RESULT:
            return _unknown_webhook()
        body, files = await read_body(request)
        if (problem := self._check_content(record.channel, body, files, creating=True)):
            return problem
        original = record.original
        if original is not None and original.flags & FLAG_LOADING and not original.deleted:
            # Right after a deferral, Discord makes a follow-up edit the "thinking" message instead
            # (deprecated, kept for compatibility); the deferral's ephemerality stays.
            await self._update(original, body, files)
            msg = original
        else:
            flags = int(body.get("flags") or 0) & SETTABLE_FLAGS
            msg = await self._create(record, body, files, flags=flags, followup=True)
        record.followups.append(msg)
        await self.fake.notify()
        return json_response(self.fake.message_payload(msg))  # for follow-ups `wait` is always true

    def _find_webhook_message(self, request: web.Request):
        """(message, None), or (None, the 404 Discord gives for an unknown webhook or message)."""
        record = self._webhook_record(request)
        if record is None:
            return None, _unknown_webhook()
        msg = self._webhook_message(record, request.match_info["message"])
        return (msg, None) if msg is not None else (None, _unknown_message())

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        msg, problem = self._find_webhook_message(request)
        return problem or json_response(self.fake.message_payload(msg))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        msg, problem = self._find_webhook_message(request)
        if problem is not None:
            return problem
        body, files = await read_body(request)
        if (problem := self._check_content(msg.channel, body, files, creating=False)):
            return problem
        content = body["content"] if "content" in body else msg.content
        embeds = body["embeds"] if "embeds" in body else msg.embeds
        kept = msg.attachments
        if body.get("attachments") is not None:
            kept = [a for a in msg.attachments if str(a.id) in {str(x.get("id")) for x in body["attachments"]}]
        if not (content or embeds or kept or files or body.get("components")):
            return error_response(400, 50006, "Cannot send an empty message")
        await self._update(msg, body, files)
        await self.fake.notify()
        return json_response(self.fake.message_payload(msg))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        msg, problem = self._find_webhook_message(request)
        if problem is not None:
            return problem
        msg.deleted = True
        await self.fake._record_event("delete", msg)
        return web.Response(status=204)

