"""recs package."""
