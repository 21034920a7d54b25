"""The hand-serialised MLS of the local voice server (localdiscord/mls.py), checked against
RFC 9420's encodings and against davey (openmls), which must accept what it signs."""
from __future__ import annotations

import struct

import davey
import pytest
from cryptography.exceptions import InvalidSignature

from localdiscord import mls

CHANNEL = 1_234_567_890_123_456_789
BOT, LISTENER, OTHER = 111, 222, 333
APPEND = davey.ProposalsOperationType.append


@pytest.mark.parametrize("length, prefix", [
    (0, "00"), (1, "01"), (63, "3f"), (64, "4040"), (300, "412c"), (16383, "7fff"),
    (16384, "80004000"), (1_000_000, "800f4240"),
])
def test_vector_lengths_use_rfc_9420_prefixes(length, prefix):
    encoded = mls.vector(bytes(length))
    assert encoded[:len(prefix) // 2].hex() == prefix
    reader = mls.Reader(encoded)
    assert reader.vector() == bytes(length) and reader.remaining == 0


def test_reader_refuses_short_data_and_the_reserved_prefix():
    with pytest.raises(mls.MlsDecodeError):
        mls.Reader(b"\x05abc").vector()
    with pytest.raises(mls.MlsDecodeError):
        mls.Reader(b"\xc0\x00\x00\x00\x00\x00\x00\x00").vector()
    with pytest.raises(ValueError):
        mls.varint(1 << 30)


def test_external_sender_package_layout():
    key = mls.ExternalSenderKey(identity=b"voice")
    package = key.package()
    assert package[:2] == b"\x40\x41" and package[2] == 0x04  # 65 bytes: an uncompressed P-256 point
    assert package[2:67] == key.public_key
    assert package[67:] == b"\x00\x01" + b"\x05voice"  # basic credential, identity<V>


def test_sign_with_label_signs_the_labelled_content():
    key = mls.ExternalSenderKey()
    signature = key.sign_with_label(b"FramedContentTBS", b"content")
    key.verify_with_label(b"FramedContentTBS", b"content", signature)
    with pytest.raises(InvalidSignature):
        key.verify_with_label(b"FramedContentTBS", b"other", signature)
    with pytest.raises(InvalidSignature):
        key.verify_with_label(b"KeyPackageTBS", b"content", signature)


def test_external_proposal_layout():
    key = mls.ExternalSenderKey()
    message = mls.external_proposal(key, mls.group_id_for(CHANNEL), 7, mls.remove_proposal(3))
    expected_content = (b"\x08" + struct.pack(">Q", CHANNEL) + struct.pack(">Q", 7)
                        + b"\x02\x00\x00\x00\x00"  # sender: external, index 0
                        + b"\x00"  # no authenticated data
                        + b"\x02"  # content type: proposal
                        + b"\x00\x03\x00\x00\x00\x03")  # Remove { removed = 3 }
    header = b"\x00\x01\x00\x01"  # mls10, public message
    assert message.startswith(header + expected_content)
    reader = mls.Reader(message, len(header) + len(expected_content))
    signature = reader.vector()
    assert reader.remaining == 0  # no membership tag for an external sender
    key.verify_with_label(b"FramedContentTBS", header + expected_content, signature)
    info = mls.read_public_message(message)
    assert (info.epoch, info.sender_type, info.content_type, info.length) == (7, mls.SENDER_EXTERNAL,
                                                                             mls.CONTENT_PROPOSAL, len(message))


def _bot_with_group(key: mls.ExternalSenderKey) -> davey.DaveSession:
    bot = davey.DaveSession(1, BOT, CHANNEL)
    bot.get_serialized_key_package()
    bot.set_external_sender(key.package())  # a pending one-member group at epoch 0
    return bot


def _listener(key: mls.ExternalSenderKey, user_id: int) -> davey.DaveSession:
    session = davey.DaveSession(1, user_id, CHANNEL)
    session.set_external_sender(key.package())
    return session


def _add(key, epoch: int, session: davey.DaveSession) -> bytes:
    proposal = mls.add_proposal(session.get_serialized_key_package())
    return mls.proposals_payload([mls.external_proposal(key, mls.group_id_for(CHANNEL), epoch, proposal)])


def test_signed_external_add_is_accepted_by_davey_and_the_listener_decrypts():
    key = mls.ExternalSenderKey(identity=b"fake")
    bot, listener = _bot_with_group(key), _listener(key, LISTENER)
    result = bot.process_proposals(APPEND, _add(key, 0, listener))
    assert result is not None and result.welcome
    commit, welcome, info = mls.split_commit_welcome(result.commit + result.welcome)
    assert (commit, welcome) == (result.commit, result.welcome)
    assert info.epoch == 0 and info.sender_type == mls.SENDER_MEMBER and info.group_id == mls.group_id_for(CHANNEL)
    listener.process_welcome(welcome)
    bot.process_commit(commit)
    assert bot.ready and bot.epoch == listener.epoch == 1
    assert bot.voice_privacy_code == listener.voice_privacy_code and len(bot.voice_privacy_code) == 30
    frame = b"\xfc" + bytes(range(60))
    encrypted = bot.encrypt_opus(frame)
    assert encrypted.endswith(b"\xfa\xfa") and encrypted != frame
    assert listener.decrypt(BOT, davey.MediaType.audio, encrypted) == frame


def test_remove_proposal_commit_has_no_welcome_and_splits_whole():
    key = mls.ExternalSenderKey()
    bot, listener, other = _bot_with_group(key), _listener(key, LISTENER), _listener(key, OTHER)
    payload = _add(key, 0, listener)
    first = bot.process_proposals(APPEND, payload)
    listener.process_welcome(first.welcome)
    bot.process_commit(first.commit)
    payload = _add(key, 1, other)
    second = bot.process_proposals(APPEND, payload)
    listener.process_proposals(APPEND, payload)  # a member needs the proposals the commit refers to
    listener.process_commit(second.commit)
    other.process_welcome(second.welcome)
    bot.process_commit(second.commit)
    assert bot.epoch == listener.epoch == other.epoch == 2

    remove = mls.external_proposal(key, mls.group_id_for(CHANNEL), 2, mls.remove_proposal(other.own_leaf_index))
    payload = mls.proposals_payload([remove])
    third = bot.process_proposals(APPEND, payload)
    listener.process_proposals(APPEND, payload)
    assert third.welcome is None
    commit, welcome, _info = mls.split_commit_welcome(third.commit)
    assert commit == third.commit and welcome is None
    listener.process_commit(commit)
    bot.process_commit(commit)
    assert sorted(int(u) for u in bot.get_user_ids()) == [BOT, LISTENER] and bot.epoch == 3


def test_davey_refuses_a_proposal_signed_by_another_key_or_for_another_epoch():
    key = mls.ExternalSenderKey()
    bot = _bot_with_group(key)
    with pytest.raises(ValueError, match="Signature"):
        bot.process_proposals(APPEND, _add(mls.ExternalSenderKey(), 0, _listener(key, LISTENER)))
    with pytest.raises(ValueError):
        bot.process_proposals(APPEND, _add(key, 5, _listener(key, LISTENER)))


def test_split_refuses_what_is_not_a_commit_and_welcome():
    key = mls.ExternalSenderKey()
    bot, listener = _bot_with_group(key), _listener(key, LISTENER)
    result = bot.process_proposals(APPEND, _add(key, 0, listener))
    with pytest.raises(mls.MlsDecodeError):
        mls.split_commit_welcome(result.commit + result.welcome + b"\x00")
    with pytest.raises(mls.MlsDecodeError):
        mls.split_commit_welcome(result.commit[:-3])
    with pytest.raises(mls.MlsDecodeError):
        mls.split_commit_welcome(result.welcome)
