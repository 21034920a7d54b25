"""An instructions file longer than 2,000 characters arrives split, with code blocks intact."""
from __future__ import annotations

from pathlib import Path
import tempfile

_lines = [f"Line {i}: " + "word " * 20 for i in range(60)]
_lines[30:30] = ["```python"] + [f"print({i})  # " + "x" * 50 for i in range(40)] + ["```"]
TEXT = "\n".join(_lines)
_path = Path(tempfile.mkdtemp()) / "long.md"
_path.write_text(TEXT)
BOT_ENV = {"INSTRUCTIONS_FILE": str(_path)}


async def test_long_reply_is_split_on_lines_with_code_blocks_closed(fake, bot):
    msg = await fake.send(fake.bob, "!instruction")
    first = await fake.reply_to(msg)
    await fake.wait_for_message(lambda m: "Line 59:" in m.content)
    parts = [m for m in fake.bot_messages(msg.channel) if m.id >= first.id]
    assert len(parts) >= 4
    assert parts[0].reference_id == msg.id
    for part in parts:
        assert len(part.content) <= 2000
        assert part.content.count("```") % 2 == 0, "a code block was left open"
    joined = "\n".join(p.content for p in parts)
    for line in _lines:
        if not line.startswith("```"):
            assert line in joined
