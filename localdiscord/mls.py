"""The few MLS (RFC 9420) structures a DAVE voice server writes and reads, serialised by hand.

davey (the client side of DAVE) builds and processes every MLS message a *member* needs;
nothing in it acts as the group's external sender.  The local voice server only has to
write an ``ExternalSender`` (op 25), external ``Add``/``Remove`` proposals wrapped in a
signed ``PublicMessage`` (op 27), and split the bot's commit from its welcome (op 28).
That is a few dozen lines of TLS-presentation-language encoding, so no MLS library is
needed; openmls inside davey verifies every signature, which checks this module too.
Layouts: ../shared/docs/dave-local-server.md and RFC 9420 §2.1.2, §6, §12.1, §12.4.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MLS10 = 1  # ProtocolVersion mls10
WIRE_PUBLIC_MESSAGE = 1  # WireFormat mls_public_message
SENDER_MEMBER, SENDER_EXTERNAL = 1, 2
CONTENT_PROPOSAL, CONTENT_COMMIT = 2, 3
PROPOSAL_ADD, PROPOSAL_REMOVE = 1, 3
CREDENTIAL_BASIC = 1
CIPHERSUITE_P256 = 2  # MLS_128_DHKEMP256_AES128GCM_SHA256_P256, DAVE protocol version 1
LEAF_SOURCE_KEY_PACKAGE, LEAF_SOURCE_UPDATE, LEAF_SOURCE_COMMIT = 1, 2, 3
SIGN_LABEL_PREFIX = b"MLS 1.0 "


class MlsDecodeError(ValueError):
    """Bytes that are not the MLS structure they should be."""


# -- variable-length vectors (RFC 9420 §2.1.2) ------------------------------------------------------
def varint(n: int) -> bytes:
    """The length prefix of a vector: 1, 2 or 4 bytes, the top two bits saying which."""
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return struct.pack(">H", 0x4000 | n)
    if n < 0x40000000:
        return struct.pack(">I", 0x80000000 | n)
    raise ValueError(f"vector too long for MLS: {n} bytes")


def vector(data: bytes) -> bytes:
    """``opaque data<V>``: the length prefix, then the bytes."""
    return varint(len(data)) + data


class Reader:
    """Reads TLS-encoded fields from the front of a buffer; raises MlsDecodeError when short."""

    def __init__(self, data: bytes, offset: int = 0):
        self.data = data
        self.offset = offset

    def take(self, n: int) -> bytes:
        if n < 0 or self.offset + n > len(self.data):
            raise MlsDecodeError(f"need {n} bytes at offset {self.offset}, have {len(self.data) - self.offset}")
        chunk = self.data[self.offset:self.offset + n]
        self.offset += n
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def varint(self) -> int:
        first = self.uint(1)
        prefix = first >> 6
        if prefix == 0:
            return first
        if prefix == 1:
            return ((first & 0x3F) << 8) | self.uint(1)
        if prefix == 2:
            return ((first & 0x3F) << 24) | self.uint(3)
        raise MlsDecodeError(f"invalid vector length prefix 0x{first:02x} at offset {self.offset - 1}")

    def vector(self) -> bytes:
        return self.take(self.varint())

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset


# -- the external sender --------------------------------------------------------------------------
class ExternalSenderKey:
    """The voice server's own P-256 signing key and its ``ExternalSender`` (op 25)."""

    def __init__(self, identity: bytes = b"", private_key: ec.EllipticCurvePrivateKey | None = None):
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        self.identity = identity

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed point MLS uses as a signature key."""
        return self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                          serialization.PublicFormat.UncompressedPoint)

    def package(self) -> bytes:
        """``ExternalSender { signature_key<V>, Credential { u16 basic, identity<V> } }``."""
        return vector(self.public_key) + struct.pack(">H", CREDENTIAL_BASIC) + vector(self.identity)

    def sign_with_label(self, label: bytes, content: bytes) -> bytes:
        """``SignWithLabel`` (RFC 9420 §5.1.2): ECDSA-SHA256 over ``SignContent``, DER encoded."""
        sign_content = vector(SIGN_LABEL_PREFIX + label) + vector(content)
        return self.private_key.sign(sign_content, ec.ECDSA(hashes.SHA256()))

    def verify_with_label(self, label: bytes, content: bytes, signature: bytes) -> None:
        """Raises cryptography's InvalidSignature when ``signature`` does not verify."""
        sign_content = vector(SIGN_LABEL_PREFIX + label) + vector(content)
        self.private_key.public_key().verify(signature, sign_content, ec.ECDSA(hashes.SHA256()))


# -- proposals ----------------------------------------------------------------------------------------
def add_proposal(key_package: bytes) -> bytes:
    """``Proposal { u16 add, KeyPackage }``; the key package as davey serialised it."""
    return struct.pack(">H", PROPOSAL_ADD) + key_package


def remove_proposal(leaf_index: int) -> bytes:
    """``Proposal { u16 remove, u32 removed }``: the member at ``leaf_index`` leaves."""
    return struct.pack(">HI", PROPOSAL_REMOVE, leaf_index)


def framed_content(group_id: bytes, epoch: int, content_type: int, content: bytes, sender_index: int = 0) -> bytes:
    """``FramedContent`` sent by external sender ``sender_index``, no authenticated data."""
    return (vector(group_id) + struct.pack(">Q", epoch) + struct.pack(">BI", SENDER_EXTERNAL, sender_index)
            + vector(b"") + bytes([content_type]) + content)


def external_proposal(key: ExternalSenderKey, group_id: bytes, epoch: int, proposal: bytes) -> bytes:
    """An ``MLSMessage`` holding a ``PublicMessage`` with ``proposal``, signed by the external sender.

    The signed bytes are ``FramedContentTBS``: version, wire format and the content; an
    external sender signs no group context and adds no membership tag."""
    header = struct.pack(">HH", MLS10, WIRE_PUBLIC_MESSAGE)
    content = framed_content(group_id, epoch, CONTENT_PROPOSAL, proposal)
    signature = key.sign_with_label(b"FramedContentTBS", header + content)
    return header + content + vector(signature)


def proposals_payload(messages: list[bytes]) -> bytes:
    """The body of op 27 after its operation byte: the messages as one vector."""
    return vector(b"".join(messages))


def group_id_for(channel_id: int) -> bytes:
    """DAVE's MLS group id: the voice channel id as 8 big-endian bytes."""
    return struct.pack(">Q", channel_id)


# -- reading the bot's commit (op 28) ---------------------------------------------------------------
@dataclass
class PublicMessageInfo:
    """What the server needs to know of a commit: its group, epoch and sender, and its size."""

    group_id: bytes
    epoch: int
    sender_type: int
    sender_index: int
    content_type: int
    length: int  # bytes of the whole MLSMessage


def _skip_leaf_node(r: Reader) -> None:
    r.vector()  # encryption_key
    r.vector()  # signature_key
    credential_type = r.uint(2)
    if credential_type != CREDENTIAL_BASIC:
        raise MlsDecodeError(f"credential type {credential_type} is not basic")
    r.vector()  # identity
    for _ in range(5):  # capabilities: versions, cipher_suites, extensions, proposals, credentials
        r.vector()
    source = r.uint(1)
    if source == LEAF_SOURCE_KEY_PACKAGE:
        r.take(16)  # lifetime: not_before, not_after
    elif source == LEAF_SOURCE_COMMIT:
        r.vector()  # parent_hash
    elif source != LEAF_SOURCE_UPDATE:
        raise MlsDecodeError(f"unknown leaf node source {source}")
    r.vector()  # extensions
    r.vector()  # signature


def read_public_message(data: bytes, offset: int = 0) -> PublicMessageInfo:
    """Parse the ``MLSMessage`` (a ``PublicMessage`` commit or proposal) at ``offset``."""
    r = Reader(data, offset)
    version, wire_format = r.uint(2), r.uint(2)
    if version != MLS10 or wire_format != WIRE_PUBLIC_MESSAGE:
        raise MlsDecodeError(f"not an MLS 1.0 public message (version {version}, wire format {wire_format})")
    group_id = r.vector()
    epoch = r.uint(8)
    sender_type = r.uint(1)
    sender_index = r.uint(4) if sender_type in (SENDER_MEMBER, SENDER_EXTERNAL) else 0
    r.vector()  # authenticated_data
    content_type = r.uint(1)
    if content_type == CONTENT_COMMIT:
        r.vector()  # proposals (ProposalOrRef<V>)
        if r.uint(1):  # optional<UpdatePath>
            _skip_leaf_node(r)
            r.vector()  # nodes (UpdatePathNode<V>)
    elif content_type == CONTENT_PROPOSAL:
        proposal_type = r.uint(2)
        if proposal_type == PROPOSAL_ADD:
            raise MlsDecodeError("reading Add proposals is not needed here")
        if proposal_type == PROPOSAL_REMOVE:
            r.take(4)
        else:
            raise MlsDecodeError(f"proposal type {proposal_type} is not supported here")
    else:
        raise MlsDecodeError(f"content type {content_type} is neither a proposal nor a commit")
    r.vector()  # signature
    if content_type == CONTENT_COMMIT:
        r.vector()  # confirmation_tag
    if sender_type == SENDER_MEMBER:
        r.vector()  # membership_tag
    return PublicMessageInfo(group_id, epoch, sender_type, sender_index, content_type, r.offset - offset)


def check_welcome(data: bytes) -> None:
    """Raises MlsDecodeError unless ``data`` is exactly one ``Welcome`` of ciphersuite 2."""
    r = Reader(data)
    suite = r.uint(2)
    if suite != CIPHERSUITE_P256:
        raise MlsDecodeError(f"welcome for cipher suite {suite}")
    r.vector()  # secrets (EncryptedGroupSecrets<V>)
    r.vector()  # encrypted_group_info
    if r.remaining:
        raise MlsDecodeError(f"{r.remaining} bytes after the welcome")


def split_commit_welcome(data: bytes) -> tuple[bytes, bytes | None, PublicMessageInfo]:
    """Op 28's payload: the commit, then (when it adds members) the welcome, with no length
    between them; the commit is parsed to find where it ends."""
    info = read_public_message(data)
    if info.content_type != CONTENT_COMMIT:
        raise MlsDecodeError("op 28 does not start with a commit")
    commit, rest = data[:info.length], data[info.length:]
    if not rest:
        return commit, None, info
    check_welcome(rest)
    return commit, rest, info
