"""The playground page's server: static files, actions as HTTP posts, live updates over a WebSocket.

The page is a small Discord client.  What a person does there (send a message with files or
a voice message, use a slash command, a message menu, a modal, join voice) becomes the same
call a test makes on the local server (`FakeDiscord.send`, `slash`, ...), so the bot sees
exactly what Discord would send it.  What the bot does (messages, edits, deletions, typing,
voice) is watched on the local server and pushed to the open pages as JSON; the bot's
voice, decoded by the local voice server, goes as binary frames of 20 ms of 48 kHz stereo
s16le PCM to the pages whose person is in the voice channel.

This module is the HTTP server and its guard (the threat model below); the rest is composed in:
feed.py (the open pages and what they are told, the WebSocket), actions.py (what a page can
do, the /api/ posts) and inputs.py (reading a request with real checks).

Threat model (the one place it is written down)
-----------------------------------------------
Whoever drives this page *is the bot's owner*: they can make the bot send files of this host
(`!getfile`, `!archive`), train, select and delete models and datasets, join voice and listen,
and they read every ephemeral answer.  The page is served on 127.0.0.1, but the owner's own
browser can be turned against it: any web page they visit can send requests to 127.0.0.1
(HTML forms, `fetch`, WebSockets, `<img>`), a page on another local port is even the *same
site* (SameSite cookies ignore ports), and a DNS name an attacker points at 127.0.0.1 (DNS
rebinding) makes their page same-origin with us by name.  The world's ids are fixed
(world.py), so an attacker needs no discovery.  So every request passes `_guard` (a middleware):

1. A secret made at each start (`secrets.token_urlsafe`) is in the link the playground prints
   (`http://127.0.0.1:8800/?token=...`, as Jupyter does).  Opening it trades the token for an
   `HttpOnly; SameSite=Strict` cookie named after the port, then redirects to the clean URL.
   `/ws`, `/api/*` and `/files/*` without that cookie get 401 (compared in constant time).
2. `Host` must be 127.0.0.1, localhost or [::1] with our port, or the PLAYGROUND_HOST the owner
   chose with PLAYGROUND_ALLOW_REMOTE (on 0.0.0.0 or :: any name: the token is then the only
   key): a rebound name gets 403.
3. A foreign `Origin` (or a `Sec-Fetch-Site` other than same-origin/none) gets 403: that is
   what stops a page on another local port, which does carry the cookie.
4. Every POST needs the header `X-Playground: 1`, which an HTML form cannot send and a
   cross-origin `fetch` can only send after a CORS preflight that is never granted; the JSON
   endpoints take only `application/json`.
5. Ephemeral messages, DMs (the bot's private answers: `!getfile` typed in a channel sends the
   file by DM), the bot typing in a DM and the bot's notices are sent only to the pages acting
   as their user (the page says who it acts as: `/ws?user=` and `{"type": "as"}`), in history
   too; nothing is hidden in JS.  A page sends DMs only in its own person's DM channel.
6. Input gets real checks (never `assert`, which `python -O` removes): bad input is answered
   400 with the reason, uploads over MAX_ATTACHMENT_BYTES 413.  Uploaded files are served with
   `nosniff`, as downloads (`Content-Disposition: attachment`) unless they are plain images or
   audio, under a sandboxing CSP; the page itself has a strict CSP and cannot be framed.
7. Memory stays bounded for days: the local server keeps no test records
   (`FakeDiscord(record=False)`, `FakeVoiceServer(record=False)`), a page that lags loses
   updates, and the history on disk has a quota (history.py).

Not covered: which of the two people ("you", the owner, or "sam") the page acts as is the
person's choice (one person trying both roles, not two accounts); with PLAYGROUND_ALLOW_REMOTE
the link and its token cross the network in plain HTTP (prefer an SSH tunnel to 127.0.0.1).
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from localdiscord.server import FakeDiscord
from localdiscord.voice import FakeVoiceServer

from .actions import FORM, JSON, Actions, modal_form, to_ogg_opus
from .feed import Feed, PageClient
from .history import History
from .inputs import FORM_OVERHEAD, Refused, content_type, snowflake

__all__ = ["PlaygroundPage", "Refused", "PageClient", "modal_form", "to_ogg_opus"]

log = logging.getLogger("playground")

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD = 25 * 1024 * 1024  # the runner passes MAX_ATTACHMENT_BYTES
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ANY_ADDRESS = ("0.0.0.0", "::", "")
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}  # and audio/*: shown in the page
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; media-src 'self'; sandbox"
SIGNED_OUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Playground: open the link it printed</title></head>
<body>
<h1>Open the link the playground printed</h1>
<p>{reason}</p>
<p>When it starts, the playground prints <code>Playground ready: open http://127.0.0.1:&lt;port&gt;/?token=&hellip;</code>
in the terminal where you ran <code>make run</code>. Open that link: its token changes at every start,
so anyone else (or any other web page) cannot act as the bot's owner here.</p>
</body></html>
"""


class PlaygroundPage:
    """Serves the page for one local server (`fake`, with `voice`) and keeps every page live.

    `token`: the secret of the link (made here when not given); `max_upload`: bytes of files per
    message (MAX_ATTACHMENT_BYTES); `host`: the address served (PLAYGROUND_HOST), accepted as a
    `Host` besides the loopback names.  What the pages are told is the `feed` (feed.py), what
    they can do the `actions` (actions.py); this class is the HTTP server and its guard."""

    def __init__(self, fake: FakeDiscord, voice: FakeVoiceServer, history: History | None = None, *,
                 token: str | None = None, max_upload: int = DEFAULT_MAX_UPLOAD):
        self.fake = fake
        self.voice = voice
        self.history = history
        self.token = token or secrets.token_urlsafe(32)
        self.max_upload = max_upload
        self.feed = Feed(fake, voice, history)
        self.actions = Actions(fake, self.feed, max_upload)
        self.url = ""  # the page's address, without the token (see login_url)
        self.port = 0
        self.cookie_name = ""
        self.refused: Counter[str] = Counter()  # refusals by reason (each new reason is logged once)
        self._bodies = {path: kind for path, (kind, _handler) in self.actions.routes().items()}
        self._hosts: set[str] = set()
        self._any_host = False
        self._runner: web.AppRunner | None = None

    @property
    def login_url(self) -> str:
        """The link to print: opening it signs the browser in (a cookie), then shows the page."""
        return f"{self.url}?token={self.token}"

    @property
    def clients(self) -> set[PageClient]:
        """The open pages."""
        return self.feed.clients

    def set_bot_online(self, online: bool) -> None:
        self.feed.set_bot_online(online)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> str:
        """Serve on `host`:`port` (0: any free port); returns the page's URL (without the token)."""
        app = web.Application(client_max_size=self.max_upload + FORM_OVERHEAD, middlewares=[self._guard])
        app.on_response_prepare.append(self._security_headers)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/ws", self.feed.websocket)
        app.router.add_get("/files/{attachment}/{filename}", self._file)
        app.router.add_get("/api/session", self._session)
        for path, (_kind, handler) in self.actions.routes().items():
            app.router.add_post(path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        self.cookie_name = f"playground-{self.port}"  # cookies ignore ports: one per playground
        self._hosts = {f"{name}:{self.port}" for name in LOOPBACK_NAMES}
        self._any_host = host in ANY_ADDRESS  # every address of the machine (PLAYGROUND_ALLOW_REMOTE)
        if not self._any_host:
            self._hosts.add(f"{shown.lower()}:{self.port}")
        self.feed.start()
        return self.url

    async def stop(self) -> None:
        await self.feed.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- who may ask what (see the threat model above) -------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        problem = self._refusal(request)
        if problem is not None:
            status, reason = problem
            return self._refuse(request, status, reason)
        try:
            return await handler(request)
        except Refused as exc:
            return self._refuse(request, exc.status, exc.reason)

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        host = request.headers.get("Host", "").lower()
        if not self._any_host and host not in self._hosts:
            return 403, f"unknown Host {host!r}: open the playground at {self.url}"
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"{request.scheme}://{host}":
            return 403, f"requests from other sites ({origin}) are refused"
        path = request.path
        if path == "/" or path.startswith("/static/"):
            return None  # the page checks its token or cookie itself; static files are public
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return 403, "requests from other sites are refused"
        if not self._signed_in(request):
            return 401, "not signed in: open the link the playground printed (…/?token=…)"
        if request.method == "POST":
            if request.headers.get("X-Playground") != "1":
                return 403, "actions need the header X-Playground: 1 (the page sends it; HTML forms cannot)"
            body = self._bodies.get(path)
            if body == JSON and request.content_type != "application/json":
                return 415, "send JSON (Content-Type: application/json)"
            if body == FORM and request.content_type not in FORM_TYPES:
                return 415, "send a form (multipart/form-data)"
        return None

    def _refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        key = f"{status} {request.method} {request.path.split('/')[1] if request.path != '/' else '/'}: {reason}"
        if key not in self.refused and status in (401, 403):
            log.warning("Playground refused %s %s (%s; Origin %s)", request.method, request.path, reason,
                        request.headers.get("Origin", "none"))
        if len(self.refused) < 200 or key in self.refused:
            self.refused[key] += 1
        if request.path == "/" and request.method == "GET":
            return web.Response(status=status, text=SIGNED_OUT.format(reason=_escape(reason)),
                                content_type="text/html")
        return web.json_response({"error": reason}, status=status)

    def _token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def _signed_in(self, request: web.Request) -> bool:
        return self._token_ok(request.cookies.get(self.cookie_name, ""))

    async def _security_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            return
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")  # the token never leaves in a Referer
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cache-Control", "no-store")
        headers.setdefault("Content-Security-Policy", PAGE_CSP if request.path == "/" else FILE_CSP)

    # -- the page, its session, the files --------------------------------------------------------
    async def _index(self, request: web.Request) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None:
            if not self._token_ok(given):
                raise Refused(401, "this link's token is not this playground's (a new one is made at every "
                                   "start): open the link it printed last")
            response = web.Response(status=303, headers={"Location": "/"})  # the clean URL
            response.set_cookie(self.cookie_name, self.token, path="/", httponly=True, samesite="Strict")
            return response
        if not self._signed_in(request):
            raise Refused(401, "this browser is not signed in to the playground (or it was restarted).")
        return web.FileResponse(STATIC / "index.html")

    async def _session(self, request: web.Request) -> web.Response:
        """What the page asks when its WebSocket closed: still signed in? (401 from _guard if not)."""
        return web.json_response({"ok": True})

    async def _file(self, request: web.Request) -> web.Response:
        attachment = self.fake.attachments.get(snowflake(request.match_info["attachment"]))
        if attachment is None:
            raise Refused(404, "no such file (or no longer kept)")
        kind = content_type(attachment.content_type) or "application/octet-stream"
        bare = kind.split(";")[0].strip().lower()
        inline = bare in INLINE_TYPES or bare.startswith("audio/")
        # Anything else (SVG, HTML, ...) is a download when opened; in the page an <img> of an SVG
        # still shows (and runs nothing): its type is kept, the CSP sandboxes it anyway.
        return web.Response(body=attachment.data, headers={
            "Content-Type": kind,
            "Content-Disposition": _disposition("inline" if inline else "attachment", attachment.filename)})


def _disposition(kind: str, filename: str) -> str:
    """`inline` or `attachment` with the file's name (RFC 6266: an ASCII one, then UTF-8)."""
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", filename)[:100] or "file"
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
