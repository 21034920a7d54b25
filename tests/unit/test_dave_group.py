"""The voice server's DAVE group (localdiscord/dave.py) against a davey client that answers
as discord.py 2.7.1 does (voice gateway received_message / received_binary_message), in
one process: group formation, members joining and leaving, op 31 recovery, downgrade and
upgrade, and the counter that catches a client skipping end-to-end encryption."""
from __future__ import annotations

import struct

import davey
import pytest

from localdiscord import dave, mls

CHANNEL, BOT, LISTENER, ALICE = 987_654_321_000, 111, 222, 333
FRAME = b"\xfc" + bytes(range(80))


class Client:
    """The bot's side: a davey session driven like discord.py drives it."""

    def __init__(self) -> None:
        self.session = davey.DaveSession(1, BOT, CHANNEL)
        self.session.get_serialized_key_package()  # sent as op 26 on SESSION_DESCRIPTION
        self.version = 1
        self.pending: dict[int, int] = {}
        self.inbox: list[tuple[str, int, object]] = []
        self.executed: list[int] = []

    async def send_json(self, op: int, data: dict) -> None:
        self.inbox.append(("json", op, data))

    async def send_binary(self, op: int, payload: bytes) -> None:
        self.inbox.append(("binary", op, payload))

    async def pump(self, group: dave.DaveGroup) -> None:
        """Handle everything the server sent, answering as discord.py would."""
        while self.inbox:
            kind, op, data = self.inbox.pop(0)
            if kind == "json":
                await self._json(group, op, data)
            else:
                await self._binary(group, op, data)

    async def _json(self, group, op, data) -> None:
        if op == dave.PREPARE_TRANSITION:
            self.pending[data["transition_id"]] = data["protocol_version"]
            await group.on_json(dave.TRANSITION_READY, {"transition_id": data["transition_id"]})
        elif op == dave.EXECUTE_TRANSITION:
            self.version = self.pending.pop(data["transition_id"], self.version)
            self.executed.append(data["transition_id"])
        elif op == dave.PREPARE_EPOCH and data["epoch"] == 1:
            self.version = data["protocol_version"]
            self.session.reinit(1, BOT, CHANNEL)
            await group.on_binary(bytes([dave.KEY_PACKAGE]) + self.session.get_serialized_key_package())

    async def _binary(self, group, op, payload) -> None:
        if op == dave.EXTERNAL_SENDER:
            self.session.set_external_sender(payload)
        elif op == dave.PROPOSALS:
            operation = davey.ProposalsOperationType.append if payload[0] == 0 else davey.ProposalsOperationType.revoke
            result = self.session.process_proposals(operation, payload[1:])
            if result is not None:
                await group.on_binary(bytes([dave.COMMIT_WELCOME]) + result.commit + (result.welcome or b""))
        elif op == dave.ANNOUNCE_COMMIT:
            transition_id = struct.unpack_from(">H", payload)[0]
            try:
                self.session.process_commit(payload[2:])
            except ValueError:  # discord.py: op 31, then a fresh group and key package
                await group.on_json(dave.INVALID_COMMIT_WELCOME, {"transition_id": transition_id})
                self.session.reinit(1, BOT, CHANNEL)
                await group.on_binary(bytes([dave.KEY_PACKAGE]) + self.session.get_serialized_key_package())
                return
            self.pending[transition_id] = self.version
            await group.on_json(dave.TRANSITION_READY, {"transition_id": transition_id})

    def frame(self) -> bytes:
        """What discord.py puts in a packet: encrypted when it can encrypt, else plaintext."""
        if self.version and self.session.ready:
            return self.session.encrypt_opus(FRAME)
        return FRAME


@pytest.fixture
async def setup():
    client = Client()
    humans: set[int] = set()
    group = dave.DaveGroup(mls.ExternalSenderKey(), bot_user_id=BOT, channel_id=CHANNEL, listener_id=LISTENER,
                           humans=lambda: set(humans), send_json=client.send_json, send_binary=client.send_binary)
    await group.start()
    await client.pump(group)
    return client, group, humans


async def test_group_forms_and_every_frame_decrypts(setup):
    client, group, _humans = setup
    assert group.ready and group.epoch == client.session.epoch == 1
    assert group.privacy_code == client.session.voice_privacy_code
    assert group.privacy_codes[1] == client.session.voice_privacy_code
    for _ in range(5):
        assert group.receive_frame(client.frame(), 0.0) == FRAME
    assert (group.encrypted_frames, group.decrypted_frames, group.undecryptable) == (5, 5, 0)
    assert group.receive_frame(dave.OPUS_SILENCE, 0.0) == dave.OPUS_SILENCE  # never encrypted


async def test_plaintext_after_the_bot_encrypted_is_counted(setup):
    client, group, _humans = setup
    now = group.ready_since
    group.receive_frame(client.frame(), now)
    assert group.receive_frame(FRAME, now) == FRAME  # still played, but counted
    assert group.unencrypted_after_ready == 1


async def test_a_bot_that_never_encrypts_is_caught_after_the_grace():
    client = Client()
    group = dave.DaveGroup(mls.ExternalSenderKey(), bot_user_id=BOT, channel_id=CHANNEL, listener_id=LISTENER,
                           humans=set, send_json=client.send_json, send_binary=client.send_binary)
    group.receive_frame(FRAME, 0.0)  # before the group: plaintext is what DAVE expects
    await group.start()
    await client.pump(group)
    ready = group.ready_since
    group.receive_frame(FRAME, ready + 0.01)  # may have been built before the commit
    assert (group.plaintext_frames, group.unencrypted_after_ready) == (2, 0)
    group.receive_frame(FRAME, ready + dave.READY_GRACE + 0.01)
    assert group.unencrypted_after_ready == 1


async def test_member_joins_and_leaves_at_the_next_epochs(setup):
    client, group, humans = setup
    humans.add(ALICE)
    assert group.needs_sync()
    await group.sync_members()
    old_epoch_frame = client.frame()  # encrypted before the bot saw the commit
    await client.pump(group)
    assert group.ready and group.epoch == client.session.epoch == 2
    assert group.member_ids() == {LISTENER, ALICE}
    alice = group.listeners[ALICE]
    assert group.receive_frame(old_epoch_frame, 0.0) == FRAME  # the listener kept the old key
    frame = client.frame()
    assert group.receive_frame(frame, alice.expected_since + 1) == FRAME
    assert alice.decrypted == 1 and alice.failures == 0
    assert alice.privacy_code == client.session.voice_privacy_code

    humans.discard(ALICE)
    await group.sync_members()
    await client.pump(group)
    assert group.epoch == client.session.epoch == 3 and group.member_ids() == {LISTENER}
    assert sorted(int(u) for u in client.session.get_user_ids()) == [BOT, LISTENER]
    assert group.receive_frame(client.frame(), 100.0) == FRAME and group.undecryptable == 0


async def test_invalid_commit_is_answered_with_op_31_and_the_group_forms_again(setup):
    client, group, _humans = setup
    transition = await group.inject_invalid_commit()
    await client.pump(group)
    assert group.invalid_commit_welcomes == [transition]
    assert group.ready and group.epoch == client.session.epoch == 1 and group.key_packages == 1
    assert group.privacy_code == client.session.voice_privacy_code
    assert group.receive_frame(client.frame(), group.ready_since + 1) == FRAME
    assert group.undecryptable == 0 and not group.errors


async def test_downgrade_to_plaintext_and_upgrade_again(setup):
    client, group, _humans = setup
    await group.downgrade()
    await client.pump(group)
    assert client.version == 0 and group.protocol_version == 0 and not group.ready
    assert group.receive_frame(client.frame(), 1e6) == FRAME and group.unencrypted_after_ready == 0
    await group.upgrade()
    await client.pump(group)
    assert client.version == 1 and group.ready and group.epoch == 1
    frame = client.frame()
    assert frame.endswith(dave.DAVE_MARKER) and group.receive_frame(frame, 1e6) == FRAME
