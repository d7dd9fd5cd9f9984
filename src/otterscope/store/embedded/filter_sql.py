"""The statements of the membership filters kept beside sealed span files (``filters.py``):
building their bits, and hashing what a lookup asks for the same way.

The hash is DuckDB's ``hash()``; ``filters.py`` records probes of it so a filter written by
another DuckDB that hashes differently is never used.
"""

from __future__ import annotations

# The Arrow tables a build registers: the file's distinct trace ids (``trace_id``), and its
# attribute index entries (``k``: key number, ``v``: value text).
FILTER_IDS = "filter_ids"
FILTER_ATTRS = "filter_attrs"


def _bits(hashed: str) -> str:
    """Per byte of a Bloom filter of ``$m`` bits and ``$k`` probes, the bits the hashes of
    ``hashed`` (one ``h`` per row) set: (byte number, byte). Double hashing: probe i of h
    is (low 32 bits + i times (high 32 bits | 1)) mod m, as ``filters.Bloom.may_hold``."""
    return (
        f"WITH h AS ({hashed}), "
        # BIGINT throughout (it cannot overflow: below 2^36): UBIGINT mixed with the
        # range's BIGINT is computed in HUGEINT, six times slower.
        "p AS (SELECT ((h & 4294967295)::BIGINT + r.i * ((h >> 32) | 1)::BIGINT) "
        "% $m::BIGINT AS p FROM h, range($k) r(i)) "
        "SELECT (p // 8)::UINTEGER AS b, bit_or((1 << (p % 8))::UTINYINT) AS v "
        "FROM p GROUP BY b"
    )


def trace_bits() -> str:
    return _bits(f"SELECT hash(trace_id) AS h FROM {FILTER_IDS}")


def attribute_bits() -> str:
    """(parameters ``$keys``: the index's key names, in key number order)."""
    return _bits(f"SELECT hash(list_extract($keys::VARCHAR[], k + 1), v) AS h FROM {FILTER_ATTRS}")


def trace_hashes(count: int) -> str:
    """The hashes of ``count`` trace ids (parameters), as the filters hash them."""
    return "SELECT " + ", ".join("hash(?::BLOB)" for _ in range(count))


def attribute_hashes(count: int) -> str:
    """The hashes of ``count`` (key, value text) pairs (parameters, flat)."""
    return "SELECT " + ", ".join("hash(?::VARCHAR, ?::VARCHAR)" for _ in range(count))
