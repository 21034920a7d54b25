"""What the cogs share: permission checks and the one data scope (`checks`), replies within
Discord's limits (`replies`), a progress message (`status`), the help text (`help`), the one
error handler (`error_handler`), the answer wording chat and listening share (`answers`) and
joining the author's voice channel (`joining`).

No cog here: the cogs in `commands/` import these; these never import a cog.
"""
