"""otterscope: a self-hosted OpenTelemetry backend."""

__version__ = "0.1.0"
