"""Prefect flows: wiring of package functions into tasks, artifacts and approvals."""
