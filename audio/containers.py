"""Which audio container some bytes are, judged by content, and how ffmpeg may open it.

ffmpeg left to probe an upload picks any of its ~300 demuxers, and some of them open
further URLs named inside the file: an HLS playlist fetches its segments (network or
local files), a concat list reads the files it names, ``subfile:`` and ``data:`` URLs
nest inputs.  An uploaded "audio" file must never make the bot read anything but the
upload, so the container is chosen here from the first bytes, from a short list of
audio formats, and ffmpeg is told exactly that demuxer (``-f``) with a demuxer and
protocol whitelist that admits nothing else.  Everything else is refused before ffmpeg
starts, with a reply that says what the file looked like.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from errors import Phrase

__all__ = ["Container", "sniff_container", "describe_content", "ffmpeg_input_args", "ACCEPTED_FORMATS"]


@dataclass(frozen=True)
class Container:
    """An accepted container: what users call it and the one ffmpeg demuxer that reads it."""

    name: str
    demuxer: str  # ffmpeg's short name for -f and -format_whitelist
    needs_seeking: bool = False  # read from a file, not a pipe (MP4 may keep its index at the end)


OGG = Container("Ogg", "ogg")
MATROSKA = Container("WebM/Matroska", "matroska")
MP3 = Container("MP3", "mp3")
AAC = Container("AAC", "aac")
WAV = Container("WAV", "wav")
FLAC = Container("FLAC", "flac")
MP4 = Container("MP4/M4A/MOV", "mov", needs_seeking=True)
AIFF = Container("AIFF", "aiff")
AMR = Container("AMR", "amr")
CAF = Container("CAF", "caf", needs_seeking=True)
ASF = Container("WMA/ASF", "asf", needs_seeking=True)

ACCEPTED_FORMATS = Phrase("a voice message or an OGG/Opus, WebM, MP3, WAV, FLAC, M4A/MP4, AAC, AIFF, AMR, CAF or WMA "
                          "file")

_ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")
# Top-level atoms a QuickTime/MP4 file starts with ("ftyp" in every modern file).
_MP4_FIRST_ATOMS = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"}
_MAX_ID3_SKIPS = 4
# An ffmpeg URL: a protocol name followed by ":" or, for nested protocols ("subfile,,start,0,,:path"), ",".
_URL = re.compile(rb"(async|cache|concatf?|crypto|data|fd|file|ftp|gopher|hls|https?|httpproxy|md5|pipe|rtmp\w*"
                  rb"|rtsp|rtp|srtp|subfile|tcp|tls|udp|unix)[,:]")


def sniff_container(data: bytes) -> Container | None:
    """The accepted container ``data`` starts with, or None for anything else."""
    offset = 0
    for _ in range(_MAX_ID3_SKIPS):  # MP3 (and some FLAC/AAC) files start with ID3v2 tags
        skipped = _id3_size(data, offset)
        if not skipped:
            break
        offset += skipped
    head = data[offset:offset + 16]
    if offset == 0:
        if head.startswith(b"OggS"):
            return OGG
        if head.startswith(b"\x1a\x45\xdf\xa3"):
            return MATROSKA
        if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
            return WAV
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return AIFF
        if head[4:8] in _MP4_FIRST_ATOMS:
            return MP4
        if head.startswith(b"#!AMR"):
            return AMR
        if head.startswith(b"caff"):
            return CAF
        if head.startswith(_ASF_GUID):
            return ASF
    if head.startswith(b"fLaC"):
        return FLAC
    return _mpeg_audio(head)


def _id3_size(data: bytes, offset: int) -> int:
    """Length of an ID3v2 tag at ``offset`` (header, body and footer), 0 if there is none."""
    header = data[offset:offset + 10]
    if len(header) < 10 or not header.startswith(b"ID3") or any(b & 0x80 for b in header[6:10]):
        return 0
    size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]
    footer = 10 if header[5] & 0x10 else 0
    return 10 + size + footer


def _mpeg_audio(head: bytes) -> Container | None:
    """An MPEG audio frame (MP3, MP2) or an ADTS AAC frame header at the start."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x3
    if layer == 0:  # ADTS: 12 sync bits, layer always 0, a valid sampling index
        return AAC if head[1] & 0xF0 == 0xF0 and (head[2] >> 2) & 0xF < 13 else None
    version = (head[1] >> 3) & 0x3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    if version == 1 or bitrate == 0xF or rate == 0x3:  # reserved values: not a frame
        return None
    return MP3


def describe_content(data: bytes) -> Phrase:
    """What refused data looks like, for the reply ("an HLS playlist", "a PNG image", ...)."""
    head = data[:64]
    for magic, what in ((b"\x89PNG", Phrase("a PNG image")), (b"\xff\xd8\xff", Phrase("a JPEG image")),
                        (b"GIF8", Phrase("a GIF image")), (b"%PDF", Phrase("a PDF document")),
                        (b"PK\x03\x04", Phrase("a ZIP archive")), (b"\x7fELF", Phrase("a program")),
                        (b"MZ", Phrase("a program"))):
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Phrase("a WebP image")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Phrase("an AVI video")
    if head[:1] == b"\x47" and data[188:189] == b"\x47":
        return Phrase("an MPEG transport stream")
    text = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"#extm3u"):
        return Phrase("an HLS playlist")
    if text.startswith(b"ffconcat") or text.startswith(b"file "):
        return Phrase("a concat list")
    if text.startswith(b"data:"):
        return Phrase("a data URI")
    if _URL.match(text) or b"://" in text[:200]:
        return Phrase("a link or a path to another file")
    unknown = Phrase("data in a format I don't know")
    try:
        decoded = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return unknown
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
    return Phrase("text") if printable >= 0.95 * max(1, len(decoded)) else unknown


def ffmpeg_input_args(container: Container, source: str) -> list[str]:
    """ffmpeg options that open ``source`` with ``container``'s demuxer and nothing else.

    ``source`` is ``"pipe:0"`` (the upload on stdin: no protocol but ``pipe`` is allowed)
    or an absolute path of a private copy (only ``file`` is allowed, given as ``file:PATH``
    so nothing in the name is read as a protocol).  The forced demuxer never probes, the
    format whitelist stops any nested demuxer, and QuickTime's external data references
    stay off."""
    if source == "pipe:0":
        protocol, url = "pipe", "pipe:0"
    else:
        if not source.startswith("/"):
            raise ValueError("a file source must be an absolute path")
        protocol, url = "file", f"file:{source}"
    args = ["-protocol_whitelist", protocol, "-format_whitelist", container.demuxer, "-f", container.demuxer]
    if container is MP4:
        args += ["-enable_drefs", "0", "-use_absolute_path", "0"]
    return args + ["-i", url]
