"""creative package."""
