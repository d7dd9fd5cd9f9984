"""The embedded backend: hot DuckDB segments sealed into Parquet files."""
