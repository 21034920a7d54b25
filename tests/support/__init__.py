"""Code that only the tests and benchmarks use (scoring transcripts, making data), kept out of
the bot's runtime packages."""
