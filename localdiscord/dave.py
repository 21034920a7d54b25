"""The server side of DAVE (Discord's end-to-end encrypted voice), protocol version 1.

Discord's voice gateway is the MLS Delivery Service and the group's *external sender*:
it hands the client its signing key (op 25), proposes who joins and leaves (op 27),
relays the commit one member makes (op 28 in, op 29/30 out) and times the switch to a
new epoch (op 21-24).  ``DaveGroup`` does that for one voice connection of the bot.

To hear the bot, the server adds members of its own to the bot's group: a *listener*
(a ``davey.DaveSession`` with a user id of its own, always there), plus one session
per human who is in the bot's voice channel, added and removed as they come and go.
Every voice frame the bot sends is decrypted by each of them after transport
decryption, so a test knows what each member heard, and a frame the bot should have
encrypted but did not is counted (``unencrypted_after_ready``).  Byte layouts and the
measured flow: ../shared/docs/dave-local-server.md; the MLS encoding is in mls.py.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import davey

from . import mls

log = logging.getLogger("fakediscord.dave")

PROTOCOL_VERSION = 1
# Voice gateway DAVE opcodes (JSON)
PREPARE_TRANSITION, EXECUTE_TRANSITION, TRANSITION_READY, PREPARE_EPOCH = 21, 22, 23, 24
INVALID_COMMIT_WELCOME = 31
# ... and binary
EXTERNAL_SENDER, KEY_PACKAGE, PROPOSALS, COMMIT_WELCOME, ANNOUNCE_COMMIT, WELCOME = 25, 26, 27, 28, 29, 30
APPEND, REVOKE = 0, 1

OPUS_SILENCE = b"\xf8\xff\xfe"  # passes DAVE unencrypted
DAVE_MARKER = b"\xfa\xfa"  # the last two bytes of every DAVE-encrypted frame
# A plaintext frame is only a fault once the bot has shown it encrypts in this group, or
# this long after it told us it is ready (op 23): its player thread may have built a frame
# just before the commit made its session ready, and UDP and the websocket race here.
READY_GRACE = 0.5
# Frames encrypted for a group that was just replaced (op 31, resume) may still arrive.
RETIRED_SECONDS = 2.0

SendJson = Callable[[int, dict], Awaitable[None]]
SendBinary = Callable[[int, bytes], Awaitable[None]]


@dataclass
class Listener:
    """A member of the bot's group on the server side, and what it decrypted."""

    user_id: int
    session: davey.DaveSession
    primary: bool = False
    decrypted: int = 0
    failures: int = 0  # frames it should have decrypted and could not
    early: int = 0  # frames it could not decrypt before the bot switched to its epoch
    expected_since: float | None = None  # from then on, every encrypted frame must decrypt
    removing: bool = False

    @property
    def epoch(self) -> int | None:
        return self.session.epoch

    @property
    def privacy_code(self) -> str | None:
        return self.session.voice_privacy_code


@dataclass
class _Round:
    """Proposals sent (op 27) and not yet committed, or a commit announced and not executed."""

    adds: dict[int, Listener]
    removes: list[Listener]
    transition_id: int | None = None


class DaveGroup:
    """DAVE for one voice websocket of the bot: external sender, listeners, transitions."""

    def __init__(self, key: mls.ExternalSenderKey, *, bot_user_id: int, channel_id: int, listener_id: int,
                 humans: Callable[[], set[int]], send_json: SendJson, send_binary: SendBinary,
                 on_change: Callable[[], None] = lambda: None):
        self.key = key
        self.bot_user_id = bot_user_id
        self.channel_id = channel_id
        self.listener_id = listener_id
        self._humans = humans  # who else should be in the group now (people in the channel)
        self._send_json = send_json
        self._send_binary = send_binary
        self._on_change = on_change
        self.protocol_version = PROTOCOL_VERSION
        self.listeners: dict[int, Listener] = {}  # user id -> member of the group
        self.retired: list[tuple[float, Listener]] = []  # (until, listener) of replaced groups
        self.key_packages = 0  # op 26 received
        self.commits = 0  # op 28 received
        self.transitions_executed: list[int] = []
        self.invalid_commit_welcomes: list[int] = []  # transition ids the bot rejected (op 31)
        self.privacy_codes: dict[int, str] = {}  # epoch -> the listener's voice privacy code
        self.ready_since: float | None = None  # the bot confirmed a group (op 23)
        self.bot_encrypting = False  # an encrypted frame arrived since the group got ready
        self.encrypted_frames = 0
        self.plaintext_frames = 0  # plaintext voice frames before the group was ready (allowed)
        self.unencrypted_after_ready = 0
        self.undecryptable = 0  # encrypted frames the listener could not decrypt
        self.errors: list[str] = []
        self._unencrypted_at: list[float] = []
        self._round: _Round | None = None
        self._next_transition = 0
        self._lock = asyncio.Lock()
        self._last_commit: bytes | None = None
        self._pending_version_changes: dict[int, int] = {}  # transition id -> protocol version
        self.late_frames = 0  # decrypted by the listener of a group just replaced

    # -- what tests look at --------------------------------------------------------------------
    @property
    def listener(self) -> Listener | None:
        """The server's own member (always in the group once it formed)."""
        return self.listeners.get(self.listener_id)

    @property
    def epoch(self) -> int | None:
        listener = self.listener
        return listener.epoch if listener is not None else None

    @property
    def privacy_code(self) -> str | None:
        listener = self.listener
        return listener.privacy_code if listener is not None else None

    @property
    def ready(self) -> bool:
        """The bot confirmed the current group and no change is half done."""
        return self.ready_since is not None and self._round is None

    @property
    def decrypted_frames(self) -> int:
        listener = self.listener
        return listener.decrypted if listener is not None else 0

    def member_ids(self) -> set[int]:
        return {uid for uid, listener in self.listeners.items() if not listener.removing}

    def describe(self) -> str:
        return (f"dave v{self.protocol_version} epoch={self.epoch} ready={self.ready} "
                f"members={sorted(self.listeners)} encrypted={self.encrypted_frames} "
                f"decrypted={self.decrypted_frames} undecryptable={self.undecryptable} "
                f"unencrypted_after_ready={self.unencrypted_after_ready} plaintext={self.plaintext_frames} "
                f"op31={self.invalid_commit_welcomes} errors={self.errors[-3:]}")

    # -- the handshake -------------------------------------------------------------------------
    async def start(self) -> None:
        """After SESSION_DESCRIPTION: the external sender package, then the first members."""
        async with self._lock:
            await self._send_binary(EXTERNAL_SENDER, self.key.package())
            await self._propose_locked(epoch=0)

    async def sync_members(self) -> None:
        """The people in the bot's channel changed: add or remove their listeners (at the next
        epoch). A change in progress finishes first (and this runs again after it)."""
        async with self._lock:
            if self.needs_sync():
                await self._propose_locked(epoch=self.epoch or 0)

    def wanted_ids(self) -> set[int]:
        return self._humans() | {self.listener_id}

    def needs_sync(self) -> bool:
        return (self._round is None and self.ready_since is not None and self.protocol_version > 0
                and self.member_ids() != self.wanted_ids())

    async def _propose_locked(self, epoch: int) -> None:
        wanted = self.wanted_ids()
        adds: dict[int, Listener] = {}
        for user_id in sorted(wanted - set(self.listeners)):
            session = davey.DaveSession(PROTOCOL_VERSION, user_id, self.channel_id)
            session.set_external_sender(self.key.package())
            adds[user_id] = Listener(user_id, session, primary=user_id == self.listener_id)
        removes = [self.listeners[uid] for uid in sorted(set(self.listeners) - wanted)]
        if not adds and not removes:
            return
        group_id = mls.group_id_for(self.channel_id)
        messages = [mls.external_proposal(self.key, group_id, epoch,
                                          mls.add_proposal(listener.session.get_serialized_key_package()))
                    for listener in adds.values()]
        for listener in removes:
            leaf = listener.session.own_leaf_index
            if leaf is None:
                continue
            listener.removing = True
            messages.append(mls.external_proposal(self.key, group_id, epoch, mls.remove_proposal(leaf)))
        if not messages:
            return
        payload = mls.proposals_payload(messages)
        # Members that are already in the group need the proposals to follow the bot's commit.
        for listener in self.listeners.values():
            if listener.removing:  # its own removal is not something it can commit to
                continue
            try:
                listener.session.process_proposals(davey.ProposalsOperationType.append, payload)
            except ValueError as exc:
                self._error(f"listener {listener.user_id} rejected the proposals: {exc}")
        self._round = _Round(adds, removes)
        log.debug("DAVE: proposing +%s -%s at epoch %d", list(adds), [r.user_id for r in removes], epoch)
        await self._send_binary(PROPOSALS, bytes([APPEND]) + payload)
        self._on_change()

    # -- messages from the bot -----------------------------------------------------------------
    async def on_binary(self, data: bytes) -> None:
        if not data:
            return
        op, payload = data[0], data[1:]
        if op == KEY_PACKAGE:
            self.key_packages += 1  # the bot makes the group itself: nothing to do with it
        elif op == COMMIT_WELCOME:
            async with self._lock:
                await self._on_commit_welcome(payload)
        else:
            self._error(f"unexpected binary opcode {op}")

    async def _on_commit_welcome(self, payload: bytes) -> None:
        self.commits += 1
        current = self._round
        if current is None or current.transition_id is not None:
            self._error("a commit nobody asked for")
            return
        try:
            commit, welcome, info = mls.split_commit_welcome(payload)
        except mls.MlsDecodeError as exc:
            self._error(f"op 28 unreadable: {exc}")
            return
        if current.adds and welcome is None:
            self._error("a commit that adds members came without a welcome")
            return
        for listener in list(self.listeners.values()):
            if listener in current.removes:
                continue
            try:
                listener.session.process_commit(commit)
            except ValueError as exc:
                self._error(f"listener {listener.user_id} could not process the commit: {exc}")
        for listener in current.adds.values():
            try:
                listener.session.process_welcome(welcome)
            except ValueError as exc:
                self._error(f"listener {listener.user_id} could not process the welcome: {exc}")
                continue
            self.listeners[listener.user_id] = listener
        for listener in current.removes:
            self.listeners.pop(listener.user_id, None)
            self.retired.append((time.monotonic() + RETIRED_SECONDS, listener))
        self._last_commit = commit
        if self.privacy_code is not None and self.epoch is not None:
            self.privacy_codes[self.epoch] = self.privacy_code
        current.transition_id = self._transition_id()
        log.debug("DAVE: commit for epoch %d, transition %d", info.epoch, current.transition_id)
        await self._send_binary(ANNOUNCE_COMMIT, struct.pack(">H", current.transition_id) + commit)
        self._on_change()

    async def on_json(self, op: int, data: dict) -> bool:
        """A DAVE JSON opcode from the bot; False when ``op`` is not one."""
        if op == TRANSITION_READY:
            async with self._lock:
                await self._on_transition_ready(int(data.get("transition_id", -1)))
        elif op == INVALID_COMMIT_WELCOME:
            async with self._lock:
                await self._on_invalid(int(data.get("transition_id", -1)))
        else:
            return False
        return True

    async def _on_transition_ready(self, transition_id: int) -> None:
        current = self._round
        now = time.monotonic()
        if current is not None and current.transition_id == transition_id:
            self._round = None
            for listener in current.adds.values():
                listener.expected_since = now + READY_GRACE
            if self.ready_since is None:
                self.ready_since = now
                self.bot_encrypting = False
        elif transition_id in self._pending_version_changes:
            pass
        else:
            self._error(f"transition ready for unknown id {transition_id}")
            return
        await self._send_json(EXECUTE_TRANSITION, {"transition_id": transition_id})
        self.transitions_executed.append(transition_id)
        version = self._pending_version_changes.pop(transition_id, None)
        if version is not None:
            self._set_version(version, now)
        self._on_change()
        if self.needs_sync():
            await self._propose_locked(epoch=self.epoch or 0)

    async def _on_invalid(self, transition_id: int) -> None:
        """The bot could not process a commit or welcome: it started a fresh pending group
        (and sent a new key package). Start over: new listeners, added at epoch 0."""
        self.invalid_commit_welcomes.append(transition_id)
        log.info("DAVE: the bot rejected transition %d (op 31); re-forming the group", transition_id)
        self._restart(time.monotonic())
        await self._propose_locked(epoch=0)

    def _restart(self, now: float) -> None:
        """Forget the current group (its listeners may still decrypt late frames for a while)."""
        for listener in self.listeners.values():
            self.retired.append((now + RETIRED_SECONDS, listener))
        self.listeners.clear()
        self._round = None
        self.ready_since = None
        self.bot_encrypting = False
        # Plaintext that raced the bot's op 31 (or our reset) is not the bot's fault.
        forgiven = [t for t in self._unencrypted_at if t >= now - READY_GRACE]
        self.unencrypted_after_ready -= len(forgiven)
        self._unencrypted_at = [t for t in self._unencrypted_at if t < now - READY_GRACE]
        self._on_change()

    def adopt(self, previous: "DaveGroup") -> None:
        """A resumed connection: the old group's listeners may still decrypt frames that
        were in flight when the old websocket closed."""
        now = time.monotonic()
        self.retired = [(now + RETIRED_SECONDS, l) for l in previous.listeners.values()]
        self.retired += [(until, l) for until, l in previous.retired if until > now]

    # -- acting as Discord -------------------------------------------------------------------------
    async def inject_invalid_commit(self) -> int:
        """Announce a commit the bot can't process (a corrupted copy of its last one);
        the bot answers op 31 and the group is formed again. Returns the transition id."""
        async with self._lock:
            commit = bytearray(self._last_commit or b"\x00\x01\x00\x01")
            commit[len(commit) // 2] ^= 0xFF
            commit[-5] ^= 0xFF
            transition_id = self._transition_id()
            await self._send_binary(ANNOUNCE_COMMIT, struct.pack(">H", transition_id) + bytes(commit))
            return transition_id

    async def downgrade(self) -> int:
        """Op 21 to protocol version 0 (as when a client without DAVE joins): after op 23 and
        op 22 the bot sends plaintext. Returns the transition id."""
        async with self._lock:
            transition_id = self._transition_id()
            self._pending_version_changes[transition_id] = 0
            await self._send_json(PREPARE_TRANSITION, {"transition_id": transition_id, "protocol_version": 0})
            return transition_id

    async def upgrade(self) -> None:
        """Op 24 with epoch 1: the bot starts a new group for version 1; the listeners join it."""
        async with self._lock:
            self.protocol_version = PROTOCOL_VERSION
            self._restart(time.monotonic())
            await self._send_json(PREPARE_EPOCH, {"epoch": 1, "protocol_version": PROTOCOL_VERSION})
            await self._propose_locked(epoch=0)

    def _set_version(self, version: int, now: float) -> None:
        self.protocol_version = version
        if version == 0:
            self._restart(now)

    def _transition_id(self) -> int:
        self._next_transition = self._next_transition % 0xFFFF + 1
        return self._next_transition

    # -- voice frames ----------------------------------------------------------------------------
    def receive_frame(self, payload: bytes, now: float) -> bytes | None:
        """The Opus frame inside ``payload`` (after transport decryption), or None when it
        can't be decrypted. Plaintext after the group is ready is counted, then passed on."""
        if payload == OPUS_SILENCE:
            return payload
        if not payload.endswith(DAVE_MARKER):
            if self.ready_since is not None and (self.bot_encrypting or now >= self.ready_since + READY_GRACE):
                self.unencrypted_after_ready += 1
                self._unencrypted_at.append(now)
            else:
                self.plaintext_frames += 1
            return payload
        self.encrypted_frames += 1
        if self.ready_since is not None:
            self.bot_encrypting = True
        heard: bytes | None = None
        for listener in list(self.listeners.values()):
            try:
                frame = listener.session.decrypt(self.bot_user_id, davey.MediaType.audio, payload)
            except ValueError:
                if listener.primary:
                    continue
                if listener.expected_since is not None and now >= listener.expected_since:
                    listener.failures += 1
                else:
                    listener.early += 1
                continue
            listener.decrypted += 1
            if listener.primary:
                heard = frame
        if heard is None:
            heard = self._from_retired(payload, now)
            if heard is None:
                self.undecryptable += 1
                if self.listener is not None:
                    self.listener.failures += 1
            else:
                self.late_frames += 1
        return heard

    def _from_retired(self, payload: bytes, now: float) -> bytes | None:
        self.retired = [(until, l) for until, l in self.retired if until > now]
        for _until, listener in self.retired:
            try:
                return listener.session.decrypt(self.bot_user_id, davey.MediaType.audio, payload)
            except ValueError:
                continue
        return None

    def _error(self, message: str) -> None:
        log.warning("DAVE: %s", message)
        self.errors.append(message)
