"""The `reelcast` command line: typer commands over the runtime, the flows and the packages."""
