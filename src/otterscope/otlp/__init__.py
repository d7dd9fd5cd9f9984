"""OTLP decoding and encoding: wire formats in, columnar batches out, and back."""
