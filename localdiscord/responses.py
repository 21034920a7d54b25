"""JSON answers shaped as Discord sends them, and request bodies read as discord.py sends them.

One place for both, because the REST routes (rest.py) and the interaction routes
(interaction_routes.py, command_routes.py) must answer and read alike.
"""
from __future__ import annotations

import json

from aiohttp import web


def json_response(data: object, status: int = 200) -> web.Response:
    # discord.py needs exactly "application/json" (json_response adds a charset).
    return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json")


def error_response(status: int, code: int, message: str, errors: dict | None = None) -> web.Response:
    body: dict = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status=status)


async def read_body(request: web.Request) -> tuple[dict, list[tuple[str, bytes, str | None]]]:
    """JSON body, or multipart `payload_json` + `files[n]` as discord.py sends uploads."""
    if not request.content_type.startswith("multipart/"):
        return await request.json(), []
    payload: dict = {}
    files = []
    reader = await request.multipart()
    async for part in reader:
        if part.name == "payload_json":
            payload = json.loads(await part.text())
        elif part.name and part.name.startswith("files["):
            files.append((part.filename or "file", bytes(await part.read()),
                          part.headers.get("Content-Type")))
    return payload, files
