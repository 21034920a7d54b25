"""Audio exception types shared by speech-to-text and text-to-speech.

Every failure the user can cause (bad upload, silence, too long, service busy)
is an ``AudioError`` carrying a ``user_message`` that the bot can show as is,
so callers never have to translate low-level errors (ffmpeg, models, network).
"""

from __future__ import annotations

from errors import Busy, Phrase, UserError

__all__ = [
    "AudioError", "AudioTooLarge", "AudioTooLong", "AudioDecodeError", "UnacceptedFormat", "DecodeTimeout", "NoSpeech",
    "EngineUnavailable", "TranscriptionFailed", "Busy",
]


class AudioError(UserError):
    """Base for audio failures; the first argument is the log detail, ``user_message`` the reply."""

    default_user_message = Phrase("Sorry, something went wrong while processing that audio.")

    def __init__(self, message: str | None = None, *, user_message: str | None = None):
        super().__init__(user_message, detail=message)


class AudioTooLarge(AudioError):
    """The audio file is bigger than the configured byte limit."""

    default_user_message = Phrase("That audio file is too big for me to transcribe.")


class AudioTooLong(AudioError):
    """The audio lasts longer than the configured duration limit."""

    default_user_message = Phrase("That recording is too long for me to transcribe.")


class AudioDecodeError(AudioError):
    """The data is empty, corrupt, or not audio at all."""

    default_user_message = Phrase("I couldn't read that file as audio. Is it a real audio or video recording?")


class UnacceptedFormat(AudioDecodeError):
    """The upload is not one of the audio containers we hand to ffmpeg (a playlist, text, an image...)."""

    default_user_message = Phrase("Not an audio format I accept.")


class DecodeTimeout(AudioDecodeError):
    """Decoding took longer than allowed (ffmpeg was stopped)."""

    default_user_message = Phrase("That file took too long to decode, so I gave up on it.")


class NoSpeech(AudioError):
    """The audio decoded fine but holds no audible speech."""

    default_user_message = Phrase("I couldn't hear any speech in that recording.")


class EngineUnavailable(AudioError):
    """A speech engine can't run here (no network, model missing, wrong language)."""

    default_user_message = Phrase("Speech recognition isn't available right now.")


class TranscriptionFailed(AudioError):
    """Every configured speech engine failed."""

    default_user_message = Phrase("Sorry, I couldn't transcribe that recording right now. Please try again later.")
