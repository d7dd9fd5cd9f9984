"""Ingest: OTLP receivers, the memory budget, and the group-commit writer."""
