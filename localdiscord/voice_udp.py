"""The UDP side of the local voice server: IP discovery and the bot's RTP packets.

One datagram endpoint on 127.0.0.1 answers discord.py's IP discovery (a 74-byte request naming
its SSRC) with the address it came from, and routes every RTP packet by its SSRC to the voice
connection that announced it (voice_connection.py decrypts and decodes it), after the
server's taps (speaker.py's echo) have seen it.  Members' voice goes out through `send`.
"""
from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .voice import FakeVoiceServer


class VoiceUdp:
    """The UDP endpoint of one FakeVoiceServer (its connections by SSRC: ``server.by_ssrc``)."""

    def __init__(self, server: "FakeVoiceServer"):
        self.server = server
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> int:
        """Listen on 127.0.0.1; returns the port."""
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=("127.0.0.1", 0))
        return self._transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        assert self._transport is not None, "the voice server is not started"
        self._transport.sendto(data, address)

    def datagram(self, data: bytes, address: tuple[str, int]) -> None:
        server = self.server
        now = time.monotonic()
        if len(data) == 74 and data[:4] == b"\x00\x01\x00\x46":  # IP discovery request
            ssrc = struct.unpack_from(">I", data, 4)[0]
            server.discoveries.append((ssrc, address))
            answer = bytearray(74)
            struct.pack_into(">HHI", answer, 0, 2, 70, ssrc)
            ip = address[0].encode("ascii")
            answer[8:8 + len(ip)] = ip
            struct.pack_into(">H", answer, 72, address[1])
            assert self._transport is not None
            self._transport.sendto(bytes(answer), address)
            return
        if len(data) < 16 or data[0] >> 6 != 2:
            server.unknown_packets += 1
            return
        conn = server.by_ssrc.get(struct.unpack_from(">I", data, 8)[0])
        if conn is None:
            server.unknown_packets += 1
            return
        for tap in server.rtp_taps:
            tap(conn, data)
        conn.receive_rtp(data, now)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, udp: VoiceUdp):
        self.udp = udp

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.udp.datagram(data, addr)
