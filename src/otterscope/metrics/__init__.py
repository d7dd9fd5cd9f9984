"""Metrics from OTLP: delta-to-cumulative accumulation and Prometheus exposition."""
