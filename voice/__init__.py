"""The bot's Discord voice services: no commands here (those are the cogs in `commands/`).

- `connection`: VoiceManager: joining, leaving, being dragged or left alone, idling out;
- `playback`: the per-server speech queue and the stream discord.py plays;
- `receiver`: one voice connection's members heard (socket and decode threads);
- `listening`: ListenManager: who may be heard, and answering them;
- `internals`: the one module that touches discord.py's private voice internals;
- `tasks`: background tasks kept referenced, their failures logged.

Layering: this package may import `audio/`, `model/`, `storage/` and `errors`, never
`commands/`: what it needs from the Discord side (wording, answers) it is given.
"""
