"""The playground: the whole bot on the local Discord-compatible server (localdiscord/), used
from a small Discord client in the browser.  `python bot.py` starts it when there is no
DISCORD_TOKEN (or with --playground / PLAYGROUND=on); see runner.py."""
